#!/bin/sh
# kernel.sh ARCH CACHE_DIR makes a Debian guest kernel available for images
# and QEMU tests: it resolves the current version from the metapackage
# (linux-image-amd64 or linux-image-arm64:arm64), downloads the .deb into
# CACHE_DIR, unpacks it into CACHE_DIR/ARCH/, runs depmod (the .deb ships no
# modules.dep) and, for amd64, extracts an uncompressed ELF vmlinux from the
# bzImage for PVH direct boot (QEMU boots it in half the time).
#
# It does nothing when CACHE_DIR/ARCH/ is already complete. It prints:
#
#	kernel=PATH        the kernel to boot (vmlinux on amd64, vmlinuz on arm64)
#	vmlinuz=PATH       the compressed kernel, for the boot partition
#	modules=DIR        lib/modules/KVER, for 'paddock image' and the initramfs
#	kver=KVER
set -eu

usage() {
	echo "usage: $0 amd64|arm64 CACHE_DIR" >&2
	exit 2
}
[ $# -eq 2 ] || usage
ARCH=$1
CACHE=$2
case "$ARCH" in
amd64 | arm64) ;;
*) usage ;;
esac
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
DIR=$CACHE/$ARCH
STAMP=$DIR/.complete

report() {
	kver=$(cat "$STAMP")
	if [ "$ARCH" = amd64 ]; then
		echo "kernel=$DIR/boot/vmlinux-$kver"
	else
		echo "kernel=$DIR/boot/vmlinuz-$kver"
	fi
	echo "vmlinuz=$DIR/boot/vmlinuz-$kver"
	echo "modules=$DIR/lib/modules/$kver"
	echo "kver=$kver"
}

if [ -s "$STAMP" ]; then
	report
	exit 0
fi

need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "kernel.sh: $1 is missing (install $2)" >&2
	exit 1
}
need apt-get apt
need dpkg dpkg
need depmod kmod
need xz xz-utils

pkg=linux-image-$ARCH
if [ "$ARCH" = arm64 ] && [ "$(dpkg --print-architecture)" != arm64 ]; then
	pkg=linux-image-arm64:arm64
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		if [ "$(id -u)" != 0 ]; then
			echo "kernel.sh: the arm64 architecture is not enabled (run as root, or: dpkg --add-architecture arm64; apt-get update)" >&2
			exit 1
		fi
		dpkg --add-architecture arm64
		apt-get update -q >/dev/null
	fi
fi

# The metapackage depends on exactly one versioned image package; take the
# candidate version's (apt may know older ones too).
resolve() {
	apt-cache show --no-all-versions "$pkg" 2>/dev/null |
		sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*\).*/\1/p' | head -n 1
}
image=$(resolve)
if [ -z "$image" ] && [ "$(id -u)" = 0 ]; then
	apt-get update -q >/dev/null # a fresh machine has no package lists yet
	image=$(resolve)
fi
if [ -z "$image" ]; then
	echo "kernel.sh: cannot resolve $pkg (run apt-get update)" >&2
	exit 1
fi
kver=${image#linux-image-}
case "$image" in
*-unsigned) kver=${kver%-unsigned} ;;
esac

deb=$(ls "$CACHE"/"${image}"_*_"$ARCH".deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
	echo "kernel.sh: downloading $image ($ARCH)" >&2
	spec=$image
	[ "$pkg" = linux-image-arm64:arm64 ] && spec=$image:arm64
	(cd "$CACHE" && apt-get download -q "$spec" >/dev/null)
	deb=$(ls "$CACHE"/"${image}"_*_"$ARCH".deb | head -n 1)
fi

rm -rf "$DIR"
mkdir -p "$DIR"
dpkg -x "$deb" "$DIR"
depmod -b "$DIR" "$kver"

# extract_vmlinux follows Linux's scripts/extract-vmlinux: find the magic of
# each compressor in the bzImage, decompress from there, and keep the first
# result that is an ELF file.
extract_vmlinux() {
	in=$1
	out=$2
	# try MAGIC SENTINEL DECOMPRESSOR...: tr turns the first magic byte into
	# a newline and the rest into SENTINEL, so grep -b finds each magic at
	# the start of a "line"; its offset, 1-based, is where tail must start.
	try() {
		magic=$1
		sentinel=$2
		shift 2
		for pos in $(LC_ALL=C tr "$magic\n$sentinel" "\n$sentinel=" <"$in" |
			LC_ALL=C grep -abo "^$sentinel" | cut -d: -f1); do
			tail -c +"$pos" "$in" | "$@" >"$out" 2>/dev/null || true
			if [ "$(head -c 4 "$out" | od -An -c | tr -d ' ')" = '177ELF' ]; then
				return 0
			fi
		done
		return 1
	}
	try '\3757zXZ\000' abcde xz -dc && return 0
	try '(\265/\375' xxx zstd -dcq && return 0
	try '\037\213\010' xy gzip -dc && return 0
	try '\002!L\030' xxx lz4 -dc && return 0
	rm -f "$out"
	return 1
}

if [ "$ARCH" = amd64 ]; then
	if ! extract_vmlinux "$DIR/boot/vmlinuz-$kver" "$DIR/boot/vmlinux-$kver"; then
		echo "kernel.sh: cannot extract vmlinux from $DIR/boot/vmlinuz-$kver" >&2
		exit 1
	fi
fi

echo "$kver" >"$STAMP"
report
