// Package partition names the partitions of a paddock disk. The boot stage
// finds partitions by these GPT names, gadget.yaml must use them for the
// structures of the system roles, and image building writes them: all three
// take the names from here.
package partition

// Names of the partitions the boot stage needs.
const (
	// Boot holds the kernel and the initramfs (vfat).
	Boot = "boot"
	// Bootenv holds the two copies of the boot environment (raw).
	Bootenv = "bootenv"
	// BaseA and BaseB hold the base image of slot a and slot b (raw SquashFS).
	BaseA = basePrefix + "a"
	BaseB = basePrefix + "b"
	// Data holds the writable state (ext4).
	Data = "data"
)

const basePrefix = "base-"

// StateDir is the agent's state directory inside the Data partition; the
// boot stage binds it at dirs.LibRel in the base.
const StateDir = "paddock"

// Base is the partition of the base slot slot ("a" or "b").
func Base(slot string) string { return basePrefix + slot }

// Required lists every partition the boot stage needs, in disk order.
func Required() []string { return []string{Boot, Bootenv, BaseA, BaseB, Data} }

// BootDir is the folder of StateDir that holds what the boot stage reads
// from the data partition: the base-revision of each slot's base.
const BootDir = "boot"

// BaseAssertion is the path, relative to StateDir (on a running device,
// to dirs.LibDir), of the assertions of the base in slot ("a" or "b"):
// the base-revision, after the account-keys that delegate its signer, as
// 'paddock image base --key' writes them. The agent writes it after it
// has written and verified the slot, and before it sets the slot to try;
// 'paddock image build' writes slot a's.
func BaseAssertion(slot string) string { return BootDir + "/" + Base(slot) + ".assert" }
