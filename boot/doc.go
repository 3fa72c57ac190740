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
//	slot=a|b        the base slot that is known good
//	try=a|b         a slot to try once (set by a base update)
//	trying=a|b      the slot being tried: set by init before booting it
//	boot_count=N    attempts of the tried slot
//
// The rule at boot: if trying is set, the last try did not commit: clear
// try and trying and boot slot (fallback). Else if try is set: move it to
// trying and boot it. Else boot slot. The agent commits a healthy tried
// slot (slot=trying, clear trying) after it has come up.
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
