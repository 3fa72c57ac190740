#!/bin/sh
# deps.sh installs what 'make test' and 'make demo' need on a fresh Debian
# machine (a minimal bookworm with git, make, gcc, libc6-dev and
# ca-certificates is enough; 'make fresh' checks it): the Debian packages
# below (with apt-get, when missing), Go itself when there is none new
# enough (scripts/go-toolchain.sh), the Go modules (through the module
# proxy) and the Debian guest kernel for the QEMU tests (scripts/kernel.sh).
set -eu
cd "$(dirname "$0")/.."

# gcc, libc6-dev, pkgconf: cgo, and pkg-config finds libseccomp for it.
# libseccomp-dev: compiling seccomp filters (cgo, linked statically).
# squashfs-tools: mksquashfs/unsquashfs for packing and reading packages.
# apparmor: apparmor_parser, to check and compile AppArmor profiles.
# bubblewrap: the peer that 'make bench' compares 'paddock run' with.
# mosquitto, mosquitto-clients: the broker the fleet tests and the demo start on loopback.
# qemu-system-x86, busybox-static: booting device images under QEMU (busybox goes into the base).
# kmod, xz-utils: scripts/kernel.sh (depmod indexes the guest kernel's modules; xz unpacks its vmlinux).
# gdisk, e2fsprogs: the image tests check the disk's GPT (sgdisk) and its ext4 data partition (e2fsck).
# cryptsetup-bin: veritysetup, which the tests compare paddock's dm-verity hash trees with.
# procps: ps, with which the escape tests describe leftover processes when they fail.
PACKAGES="gcc libc6-dev pkgconf libseccomp-dev squashfs-tools apparmor bubblewrap mosquitto mosquitto-clients
qemu-system-x86 busybox-static kmod xz-utils gdisk e2fsprogs procps cryptsetup-bin"

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=""
for p in $PACKAGES; do
	case $p in
	pkgconf) installed pkgconf || installed pkg-config || missing="$missing $p" ;; # either gives pkg-config
	*) installed "$p" || missing="$missing $p" ;;
	esac
done
# Fetching Go needs curl and unzip; only ask for them when Go is missing.
if ! scripts/go-toolchain.sh check >/dev/null 2>&1; then
	for p in curl unzip; do
		installed "$p" || missing="$missing $p"
	done
fi
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing Debian packages:$missing (run 'sudo make deps')" >&2
		exit 1
	fi
	echo "deps: installing$missing"
	apt-get update -q >/dev/null
	log=$(mktemp)
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		echo "deps: cannot install$missing (see apt-get's output above)" >&2
		exit 1
	fi
	rm -f "$log"
fi

# Go: the one on PATH or in /usr/local/go when new enough, else the pinned
# toolchain from the module proxy, unpacked under .cache/go. Either way
# .cache/go/bin leads to it, and the Makefile puts that first on PATH.
gobin=$(scripts/go-toolchain.sh install)
"$gobin/go" mod download
# The Debian guest kernel that device images boot, cached in .cache/kernels.
if [ "$(id -u)" = 0 ]; then
	scripts/kernel.sh amd64 "$(pwd)/.cache/kernels" >/dev/null
fi
