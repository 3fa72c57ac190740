#!/bin/sh
# deps.sh installs what building and testing paddock needs on a fresh
# Debian machine: the Debian packages below (with apt-get, when missing) and
# the Go modules (through the module proxy).
set -eu

# squashfs-tools: mksquashfs/unsquashfs for packing and reading packages.
# libseccomp-dev: compiling seccomp filters (cgo, linked statically).
# apparmor: apparmor_parser, to check and compile AppArmor profiles.
# bubblewrap: the peer that 'make bench' compares 'paddock run' with.
# mosquitto: the MQTT broker that the fleet tests start on loopback.
# qemu-system-x86, busybox-static, kmod: booting device images under QEMU
# (busybox goes into the base; depmod indexes the guest kernel's modules).
PACKAGES="squashfs-tools libseccomp-dev apparmor bubblewrap mosquitto mosquitto-clients qemu-system-x86 busybox-static kmod"

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing Debian packages:$missing (run 'sudo make deps')" >&2
		exit 1
	fi
	echo "deps: installing$missing"
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
go mod download
# The Debian guest kernel that device images boot, cached in .cache/kernels.
if [ "$(id -u)" = 0 ]; then
	scripts/kernel.sh amd64 "$(pwd)/.cache/kernels" >/dev/null
fi
