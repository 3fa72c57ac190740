#!/bin/bash
# fresh.sh runs the README's two commands, 'make test' and 'make demo', the
# way a new user would: on a minimal Debian bookworm (debootstrap
# --variant=minbase plus git, make, gcc, libc6-dev and ca-certificates) with
# a clone of this checkout's HEAD, so that a step 'make deps' misses fails
# here rather than on someone's new machine. As root:
#
#   scripts/fresh.sh            (make fresh)
#   scripts/fresh.sh 'COMMAND'  run COMMAND in the clone instead (to look into a failure)
#
# The minimal root is built once with debootstrap from the Debian mirror this
# machine's apt uses, and cached in .cache/fresh/; every run gets a fresh
# copy of it (an overlayfs upper layer, thrown away at the end). The run is
# in its own mount, PID, UTS and IPC namespaces (unshare), with the copy as the root
# of the mount namespace (pivot_root, not chroot): the host's /dev (loop
# devices), /sys (cgroups) and a new /proc are mounted into the root; the
# network and the kernel are the host's, so the tests' own rules (loopback
# only, cgroups and loop devices undone per test) keep the host unchanged.
# All mounts go with the namespace, and are undone by a trap before that.
#
# Downloaded .debs and Go module zips are kept between runs in .cache/fresh
# (apt and go check them against their indexes and go.sum): the install
# steps still run every time, only the bytes are not fetched twice. So is
# Go's build cache: its keys cover the compiler, the cgo flags pkg-config
# gives and the sources, so a missing package still fails the build.
#
# Besides failing when either command fails, the run fails when a test
# skips for a reason that names something to install (a missing tool,
# loop devices, the guest kernel): that is a hole in 'make deps' too.
#
# GOPROXY, GOSUMDB, GONOSUMDB, GOPRIVATE, GONOPROXY, GOINSECURE and the
# http(s)_proxy/no_proxy variables pass into the root; the host's apt proxy,
# its Check-Valid-Until/Check-Date settings and its certificate authorities
# are copied into it.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
SUITE=bookworm
INCLUDE=git,make,gcc,libc6-dev,ca-certificates
CACHE=$SRC/.cache/fresh

die() {
	echo "fresh: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root, for debootstrap, mounts and the tests (try 'sudo make fresh')"

# --- inside the namespaces: PID 1 of the new PID namespace -----------------
if [ "${1:-}" = --inside ]; then
	run=$2
	command=${3:-}
	root=$run/root
	cleanup() {
		set +e
		umount -R "$root" 2>/dev/null || umount -R -l "$root"
	}
	trap cleanup EXIT
	mount -t overlay overlay -o "lowerdir=$CACHE/root,upperdir=$run/upper,workdir=$run/work" "$root"
	mount --rbind /dev "$root/dev"
	mount --rbind /sys "$root/sys"
	mount -t proc proc "$root/proc"
	# /tmp and /var/tmp on the host's disk, not in the overlay: the tests
	# make disk images, loop-mount packages and build overlays there.
	for d in tmp var/tmp; do
		mkdir -p "$run/$d"
		chmod 1777 "$run/$d"
		mount --bind "$run/$d" "$root/$d"
	done
	mkdir -p "$CACHE/archives/partial" "$CACHE/gomod" "$CACHE/gocache" \
		"$root/root/go/pkg/mod/cache/download" "$root/root/.cache/go-build"
	mount --bind "$CACHE/archives" "$root/var/cache/apt/archives"
	mount --bind "$CACHE/gomod" "$root/root/go/pkg/mod/cache/download"
	mount --bind "$CACHE/gocache" "$root/root/.cache/go-build"
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
	# This machine's certificate authorities: its network may reach the Go
	# proxy only through a TLS proxy that Debian's defaults do not know.
	# Named by SSL_CERT_FILE (Go) and CURL_CA_BUNDLE (curl), so that no
	# package installed in the root can regenerate them away.
	cas=()
	if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
		cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/host-ca-certificates.crt"
		cas=(SSL_CERT_FILE=/etc/ssl/host-ca-certificates.crt CURL_CA_BUNDLE=/etc/ssl/host-ca-certificates.crt)
	fi
	cp "$run/apt.conf" "$root/etc/apt/apt.conf.d/01paddock-fresh"
	# The root is thrown away: dpkg need not fsync every file it unpacks
	# (minutes on a busy disk).
	echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/paddock-fresh"

	# The clone: this checkout's HEAD, committed state only.
	git init -q "$root/root/paddock"
	git -C "$root/root/paddock" fetch -q "$SRC" HEAD
	git -C "$root/root/paddock" checkout -q -b fresh FETCH_HEAD

	pass=()
	for v in GOPROXY GOSUMDB GONOSUMDB GOPRIVATE GONOPROXY GOINSECURE \
		http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
		[ -n "${!v:-}" ] && pass+=("$v=${!v}")
	done
	# The root becomes the root of a mount namespace of its own (pivot_root,
	# as containers do), not a chroot: a process that joins a mount
	# namespace (the kept sandboxes, with setns) gets the namespace's root,
	# which under chroot would be the host's.
	run_in_root() {
		mkdir -p "$root/.oldroot"
		(cd "$root" && unshare --mount --propagation private \
			sh -c 'pivot_root . .oldroot && umount -l /.oldroot && rmdir /.oldroot && exec "$@"' sh \
			/usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
			PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
			"${cas[@]}" "${pass[@]}" /bin/bash -c "cd /root/paddock && $1")
	}
	if [ -n "$command" ]; then
		echo "fresh: in $root: $command"
		# With the Go that 'make deps' links, as the Makefile has it.
		run_in_root "export PATH=/root/paddock/.cache/go/bin:\$PATH; $command"
		exit
	fi
	echo "fresh: in $root: make test, then make demo"
	# -v lists the skipped tests and why, for the check below.
	status=0
	t0=$(date +%s)
	# make deps first, only to time it: make test runs it again (at once).
	run_in_root 'make deps && td=$(date +%s) && make test TESTFLAGS=-v && echo "fresh-deps-done $td"' >"$run/test.log" 2>&1 || status=$?
	t1=$(date +%s)
	td=$(sed -n 's/^fresh-deps-done //p' "$run/test.log")
	cp "$run/test.log" "$CACHE/last-test.log"
	grep -E '^(ok|FAIL|---|panic:|deps:|go-toolchain:|kernel\.sh:|\?)|^make: \*\*\*' "$run/test.log" |
		grep -v -e '^--- PASS' -e '^--- SKIP' || true
	if [ $status != 0 ]; then
		# What each failed test printed (its last 150 lines): CI keeps only
		# this script's output, not the log.
		awk '/^=== (RUN|CONT|NAME) / { cur = $3; next }
			/^ *--- FAIL: / { name = $3; n = cnt[name]; from = n > 150 ? n - 150 : 0
				print "fresh: --- what " name " printed (" n " lines, the last " (n - from) "):"
				for (i = from; i < n; i++) print "    " buf[name, i]
				next }
			cur != "" { buf[cur, cnt[cur]++] = $0 }' "$run/test.log" || true
		die "make test failed (its whole output: $CACHE/last-test.log)"
	fi
	run_in_root 'make demo' >"$run/demo.log" 2>&1 || status=$?
	cp "$run/demo.log" "$CACHE/last-demo.log"
	[ $status = 0 ] || { tail -n 40 "$run/demo.log"; die "make demo failed (its whole output: $CACHE/last-demo.log)"; }
	tail -n 1 "$run/demo.log"
	echo "fresh: make deps took $((td - t0)) s, make test $((t1 - td)) s, make demo $(($(date +%s) - t1)) s"
	# Skipped tests with their reasons: in -v output a test's lines follow
	# its "=== RUN|CONT|NAME" header, the reason last before "--- SKIP".
	awk '/^=== (RUN|CONT|NAME) / { cur = $3 }
		/^ *[^ ]+_test\.go:[0-9]+: / { r = $0; sub(/^ */, "", r); why[cur] = r }
		/^ *--- SKIP: / { print $3 ": " why[$3] }' "$run/test.log" >"$run/skips"
	echo "fresh: $(wc -l <"$run/skips") tests skipped:"
	sed 's/^/  /' "$run/skips"
	missing=$(grep -v -E 'make cross|CROSS_QEMU' "$run/skips" |
		grep -i -E 'make deps|apt-get install|\(install |not installed|is missing|needs (loop|a guest kernel|/bin/sh)|no /dev/kmsg|no cgroup hierarchy|cannot loop-mount|cannot open device nodes' || true)
	if [ -n "$missing" ]; then
		echo "$missing" | sed 's/^/  /'
		die "tests skipped for want of something 'make deps' should install, or the root lacks (above)"
	fi
	echo "fresh: make test and make demo pass on a minimal Debian $SUITE"
	exit 0
fi

# --- on the host -------------------------------------------------------------
for tool in unshare pivot_root git; do
	command -v $tool >/dev/null || die "$tool is missing (util-linux, git)"
done
if ! command -v debootstrap >/dev/null; then
	echo "fresh: installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null; } ||
		die "cannot install debootstrap"
fi
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
	echo "fresh: note: uncommitted changes are not tested, only HEAD ($(git rev-parse --short HEAD))" >&2

# The Debian sources of this machine's apt (origin Debian, or, before any
# apt-get update, Debian-looking URIs), as "URI RELEASE" lines.
sources=$(apt-get indextargets --format '$(ORIGIN)|$(REPO_URI)|$(RELEASE)' 2>/dev/null | sort -u |
	awk -F'|' '$1 == "Debian" || ($1 == "" && $2 ~ /\/debian(-security)?\/$/) { print $2, $3 }' | sort -u)
mirror=$(echo "$sources" | awk '$2 !~ /-/ { print $1; exit }')
[ -n "$mirror" ] || die "this machine's apt has no Debian source (see /etc/apt/sources.list*): debootstrap needs a mirror"

# What this machine's apt is told about proxies and validity, for the root;
# debootstrap (wget) takes the proxy from the environment.
apt-config dump | grep -E '^Acquire::(https?|ftp)::Proxy |^Acquire::Check-(Valid-Until|Date) ' >"${TMPDIR:-/tmp}/fresh-apt.$$" || true
aptconf=$(cat "${TMPDIR:-/tmp}/fresh-apt.$$")
rm -f "${TMPDIR:-/tmp}/fresh-apt.$$"
if [ -z "${http_proxy:-}" ]; then
	p=$(echo "$aptconf" | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p')
	[ -n "$p" ] && [ "$p" != DIRECT ] && export http_proxy=$p
fi

# The cached minimal root, built once per suite, packages and mirror.
key="$SUITE minbase $INCLUDE $mirror"
if [ "$(cat "$CACHE/root.key" 2>/dev/null)" != "$key" ]; then
	echo "fresh: building a minimal Debian $SUITE root from $mirror (once; a few minutes)"
	mkdir -p "$CACHE"
	rm -rf "$CACHE/root" "$CACHE/root.key" "$CACHE/root.new"
	log=$CACHE/debootstrap.log
	debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$CACHE/root.new" "$mirror" >"$log" 2>&1 ||
		{ tail -n 20 "$log" >&2; die "debootstrap failed (log: $log)"; }
	# apt sources as this machine has them, for the suite of the root.
	echo "$sources" | while read -r uri release; do
		echo "deb $uri $SUITE${release#"${release%%-*}"} main"
	done >"$CACHE/root.new/etc/apt/sources.list"
	rm -f "$CACHE/root.new"/var/cache/apt/archives/*.deb
	mv "$CACHE/root.new" "$CACHE/root"
	echo "$key" >"$CACHE/root.key"
fi

run=$(mktemp -d /var/tmp/paddock-fresh.XXXXXX)
# The mounts exist only in the namespace, which is gone when unshare
# returns: nothing here can reach the host's /dev or /sys through them.
trap 'rm -rf "$run"' EXIT
mkdir -p "$run/upper" "$run/work" "$run/root"
echo "$aptconf" >"$run/apt.conf"
start=$(date +%s)
status=0
unshare --mount --propagation private --pid --fork --uts --ipc "$0" --inside "$run" "${1:-}" || status=$?
echo "fresh: took $(($(date +%s) - start)) s"
exit $status
