#!/bin/sh
# cross.sh builds static paddock binaries for the boards, with cgo (libseccomp
# and the C fast path of 'paddock run'), the same flags as 'make build':
#
#   scripts/cross.sh [ARCH...]     ARCH: amd64 arm64 armv7 (default: all three)
#
# into bin/paddock-linux-ARCH. It first installs what is missing (as root,
# with apt-get, checked with dpkg-query first, so a second run installs
# nothing): the foreign dpkg architecture, the cross gcc, the cross
# libc6-dev (only a Recommends of the gcc, so named here) and libseccomp-dev
# for the target. Each result is checked
# with 'file' (statically linked, right machine) and its size printed.
# Set CROSS_QEMU=1 to also install qemu-user, which lets 'go test ./cross'
# run the arm binaries (qemu-aarch64, qemu-arm: 12 MB to download, 99 MB
# installed; qemu-user-static, which the test also takes, is 63 MB / 380 MB
# and not needed, the binaries being static). Not required: without it the
# test skips those runs.
set -eu
cd "$(dirname "$0")/.."

GO=${GO:-go}
OUT=${OUT:-bin}
MAXSIZE=$((20 * 1024 * 1024)) # the goal for one binary

# The Go flags of 'make build' (Makefile BUILDFLAGS).
TAGS=osusergo,netgo
LDFLAGS='-s -w -linkmode external -extldflags "-static"'

[ $# -gt 0 ] || set -- amd64 arm64 armv7

host=$(dpkg --print-architecture)

# target ARCH sets, for one board architecture: deb (dpkg architecture),
# triplet (GNU), goarch, goarm and machine (what 'file' says).
target() {
	goarm=""
	case "$1" in
	amd64) deb=amd64 triplet=x86_64-linux-gnu goarch=amd64 machine="x86-64" ;;
	arm64) deb=arm64 triplet=aarch64-linux-gnu goarch=arm64 machine="ARM aarch64" ;;
	armv7) deb=armhf triplet=arm-linux-gnueabihf goarch=arm goarm=7 machine="ARM, EABI5" ;;
	*)
		echo "cross: unknown architecture $1 (want amd64, arm64 or armv7)" >&2
		exit 2
		;;
	esac
	if [ "$deb" = "$host" ]; then
		cc=gcc gccpkg=gcc libcpkg=libc6-dev
	else
		# The cross C library is only a Recommends of the cross gcc.
		cc=$triplet-gcc gccpkg=gcc-$(echo "$triplet" | tr _ -) libcpkg=libc6-dev-$deb-cross
	fi
}

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# What is missing, for every target asked for.
archs="" missing=""
for a in "$@"; do
	target "$a"
	if [ "$deb" != "$host" ] && ! dpkg --print-foreign-architectures | grep -qx "$deb"; then
		archs="$archs $deb"
	fi
	for p in "$gccpkg" "$libcpkg" "libseccomp-dev:$deb"; do
		installed "$p" || missing="$missing $p"
	done
done
installed file || missing="$missing file"
installed pkgconf || installed pkg-config || missing="$missing pkgconf"
if [ "${CROSS_QEMU:-0}" = 1 ]; then
	installed qemu-user || installed qemu-user-static || missing="$missing qemu-user"
fi

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "cross: missing Debian packages:$missing (run 'sudo make cross')" >&2
		exit 1
	fi
	for d in $archs; do
		echo "cross: adding dpkg architecture $d"
		dpkg --add-architecture "$d"
	done
	echo "cross: installing$missing"
	# Some configured source may not serve every architecture (apt-get
	# update then exits 100): Debian's own lists are what matter, and the
	# install below fails clearly if a package is still not found.
	apt-get update -q >/dev/null 2>&1 || echo "cross: warning: apt-get update reported errors (going on)" >&2
	log=$(mktemp)
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >"$log" 2>&1; then
		cat "$log" >&2
		rm -f "$log"
		echo "cross: cannot install$missing" >&2
		exit 1
	fi
	rm -f "$log"
fi

mkdir -p "$OUT"
status=0
for a in "$@"; do
	target "$a"
	bin=$OUT/paddock-linux-$a
	start=$(date +%s)
	# pkg-config must find the target's libseccomp.pc only, never the
	# host's; a native build keeps the environment's setting, as 'make build'.
	if [ "$deb" = "$host" ]; then
		pcenv=${PKG_CONFIG_LIBDIR+"PKG_CONFIG_LIBDIR=$PKG_CONFIG_LIBDIR"}
	else
		pcenv="PKG_CONFIG_LIBDIR=/usr/lib/$triplet/pkgconfig"
	fi
	if ! env ${pcenv:+"$pcenv"} CGO_ENABLED=1 GOOS=linux GOARCH="$goarch" GOARM="$goarm" CC="$cc" \
		$GO build -trimpath -tags "$TAGS" -ldflags "$LDFLAGS" -o "$bin" ./cmd/paddock; then
		echo "cross: $bin: build failed (GOARCH=$goarch${goarm:+ GOARM=$goarm} CC=$cc)" >&2
		status=1
		continue
	fi
	desc=$(file -b "$bin")
	size=$(stat -c %s "$bin")
	took=$(($(date +%s) - start))
	case "$desc" in
	*"$machine"*) ;;
	*)
		echo "cross: $bin: not a $machine binary: $desc" >&2
		status=1
		;;
	esac
	case "$desc" in
	*"statically linked"*) ;;
	*)
		echo "cross: $bin: not statically linked: $desc" >&2
		status=1
		;;
	esac
	note=""
	[ "$size" -le "$MAXSIZE" ] || note=" (over the 20 MB goal)"
	printf 'cross: %-26s %6.2f MB  %s, static, built in %ss%s\n' "$bin" \
		"$(echo "$size" | awk '{print $1 / 1048576}')" "$machine" "$took" "$note"
done
exit $status
