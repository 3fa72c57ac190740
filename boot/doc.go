// Package boot is the early-boot stage of a paddock device: 'paddock init'.
//
// # The disk
//
// A device's disk has a GPT with partitions found by their names (the
// kernel shows them as PARTNAME in /sys/class/block/*/uevent):
//
//	boot     FAT32: the kernel (vmlinuz), the initramfs (initrd.img), for boot loaders
//	bootenv  raw, 1 MiB: the boot environment (below)
//	base-a   raw: the base SquashFS of slot a
//	base-b   raw: the base SquashFS of slot b
//	data     ext4: writable state, mounted at /var/lib/paddock (and /data)
//
// # The boot environment
//
// The bootenv partition holds two copies of one 4096-byte record, at
// offsets 0 and 4096; a write goes to the older copy, is fsynced, then the
// next write goes to the other, so a power cut leaves one good copy. A
// record is the text "paddock-bootenv-1\n", then "key=value\n" lines, NUL
// padding, and in its last 8 bytes the sequence number (uint32 big-endian)
// then the CRC-32 (IEEE, big-endian) of the first 4088 bytes. The copy
// with a valid CRC and the higher sequence wins. A damaged environment
// never stops a boot: init rewrites a damaged copy from the valid one, and
// with no valid copy boots the default slot a and writes it to both
// copies; either way it says so on the console and appends a line to
// /var/lib/paddock/boot-problems on the data partition, for the agent to
// report (Problems). Keys:
//
//	slot=a|b          the base slot that is known good (the fallback)
//	try=a|b           a slot to try (set by a base update, SetTry)
//	trying=a|b        the slot being tried: set by init before booting it
//	boot_count=N      boots of the tried slot so far
//	attempts=N        boots the tried slot gets before the fallback (0: 1)
//	bad=a|b           a slot init never boots: being written (MarkWriting),
//	                  or its try failed (MarkBad, or attempts used up)
//	bad_why=TEXT      "writing", or why the try failed (one line)
//	last_slot=a|b     the last try of a base: its slot,
//	last_result=R     trying, committed or failed,
//	last_reason=TEXT  why it failed,
//	last_boots=N      and the boots it had
//
// Keys with empty or zero values are left out. The rule at boot
// (Choose): if trying is set and has attempts left (boot_count below
// attempts) and is not bad, count the boot and boot it again; if trying is
// set without attempts left (init panicked, the agent never committed, the
// watchdog reset a hung device), fall back: clear try and trying, mark it
// bad and record the failed attempt, and boot slot. Else if try is set,
// move it to trying with boot_count=1 and boot it. Else boot slot. Slot is
// never tried nor marked bad, so no write loses the fallback, and every
// write is one record over the older copy: a power cut leaves the old or
// the new environment. A base update calls MarkWriting, writes the slot,
// SetTry, reboots; in the tried boot the agent calls Commit once the
// device is healthy (slot=trying, the try ends), or MarkBad and reboots.
// ReadStatus gives 'paddock base status' the slots' states, this boot's
// record (Running) and the last attempt.
//
// # A verified base
//
// A slot image (written raw to base-a or base-b) is the base SquashFS,
// zero-padded to a multiple of 4096 bytes, then its dm-verity hash tree
// (format 1, sha256, 4096-byte blocks, a salt, no superblock). Its signed
// base-revision assertion (with the account-key delegating its key) is
// kept on the data partition, /var/lib/paddock/boot/base-a.assert and
// base-b.assert (partition.BaseAssertion). When the initramfs carries trusted root
// keys (etc/paddock/trusted, 'paddock image initrd --trust'), init
// mounts the data partition first, checks the slot's assertion against
// them (CheckBase), creates a read-only dm-verity target
// /dev/mapper/paddock-base-SLOT with the assertion's root hash and salt
// (DM_DEV_CREATE, DM_TABLE_LOAD, DM_DEV_SUSPEND to resume: no
// libdevmapper, no udev), and mounts the SquashFS from it: the kernel
// checks every block it reads. A tried slot is read through once before it
// is mounted, so a corrupted block anywhere refuses it at once. A slot
// without a valid assertion, or whose verity setup or read-through fails,
// does not boot: a tried slot is marked bad (the reason in the boot
// environment's last attempt) and the known-good slot boots in the same
// boot; a known-good slot that fails falls back to the other slot unless
// it is bad. Each says why on the console and in boot-problems. A block
// found corrupted later, at run time, fails its read with EIO (the
// kernel's default, logged by dm-verity): restart_on_corruption is not
// used, because a corrupted known-good slot would then reboot forever;
// the read-through covers the one time a base is most likely damaged, its
// first boot after it was written. Without trusted keys (a development
// initramfs) the base is mounted unchecked, and the boot record says so.
//
// # The watchdog of a tried boot
//
// A tried boot must prove itself (see tryMonitor): stage 1 arms the
// watchdog (i6300esb on QEMU with -device i6300esb, else softdog) before
// it switches to the tried base and passes it to stage 2, which pets it
// while the agent comes up and then while it answers on its socket, and
// stops it once the agent has committed. An agent not ready within the try
// wait, or no longer answering, makes init note why in the boot
// environment and reboot; a hang of init, the base or the kernel leaves
// the watchdog unpetted and it resets the machine; an init that dies
// panics the kernel, and panic=-1 reboots it. A stage 1 failure during a
// try reboots instead of powering off. Each of these uses an attempt.
//
// # The boot record
//
// Init writes what it booted to /run/paddock/boot.json (BootRecord,
// Running): the slot, whether it is a try, whether the base is verified
// with which root hash, the watchdog, a fallback and why, and the
// partitions' device nodes. ReadStatus adds the boot environment, for
// 'paddock base status'.
//
// # The kernel command line
//
//	console=ttyS0 (amd64) or console=ttyAMA0 (arm64)
//	paddock.slot=a|b      force a slot (tests)
//	paddock.cmd=BASE64    (tests and 'paddock vm run'): once the agent is ready, run this
//	                      shell command as root and report it on the console (below),
//	                      then power off
//	paddock.debug=1       a shell on the console instead of powering off on failure
//	paddock.trace=1       print each boot step with the time since the kernel started
//	paddock.watchdog=N    the watchdog timeout of a tried boot, in seconds (default 30)
//	paddock.trywait=N     how long a tried boot waits for its agent, in seconds (default 180)
//	panic=-1              (set by package qemu; boot loaders should too) reboot at once
//	                      on a kernel panic, so that a tried base whose init dies falls back
//
// # The agent
//
// Stage 2 runs 'paddock daemon' from its own binary (/proc/self/exe) and
// restarts it when it exits. It passes the write end of a pipe as
// descriptor 3, named by PADDOCK_NOTIFY_FD; the agent writes "READY=1"
// there once its API serves (package internal/notify), and init then
// prints the ready line below.
//
// # The console protocol
//
// init prints these lines alone on the console:
//
//	paddock: agent ready
//	paddock: cmd begin
//	... the command's output (stdout and stderr) ...
//	paddock: cmd end EXITCODE
//	paddock: power off
//	paddock: boot failed: REASON
package boot
