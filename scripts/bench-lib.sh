# bench-lib.sh is what the bench scripts share: the root check, a work
# folder with its own PADDOCK_ROOT, a signed package, the agent, timing
# and ratios. A bench script sources it from the repository's root:
#
#	cd "$(dirname "$0")/.."
#	. scripts/bench-lib.sh
#
# (bash; the script runs with set -euo pipefail.)

P="$PWD/bin/paddock"

# bench_need_root WHY exits unless run as root, saying why root is needed.
bench_need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "bench: needs root, to $1" >&2
		exit 1
	fi
}

# bench_workdir APP makes $work in /var/tmp, exports a PADDOCK_ROOT and
# PADDOCK_KEYS inside it, and makes the package's source folders
# $work/src/meta and $work/src/bin. On exit, bench_cleanup removes APP,
# stops the agent ($daemon), unmounts what is left and removes $work.
bench_workdir() {
	bench_app=$1
	work=$(mktemp -d /var/tmp/paddock-bench.XXXXXX)
	export PADDOCK_ROOT="$work/root" PADDOCK_KEYS="$work/keys"
	daemon=""
	trap bench_cleanup EXIT
	mkdir -p "$PADDOCK_ROOT" "$work/src/meta" "$work/src/bin"
}

bench_cleanup() {
	set +e
	[ -n "$daemon" ] && { "$P" remove "$bench_app" >/dev/null 2>&1; kill "$daemon"; wait "$daemon"; } 2>/dev/null
	grep -o " $work/root/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$work"
}

# bench_publish APP, run in $work, makes a root key (trusted) and a
# publisher key delegated for APP, and packs $work/src into APP.pdk, signed
# as revision 1.
bench_publish() {
	"$P" key create root >/dev/null
	"$P" key create pub >/dev/null
	"$P" key export root >root.asc
	"$P" key trust root.asc >/dev/null
	"$P" key delegate --key root --to pub --role publisher --names "$1" -o pub.delegation >/dev/null
	"$P" pack src -o "$1.pdk" >/dev/null
	"$P" sign "$1.pdk" --key pub --revision 1 --delegation pub.delegation >/dev/null
}

# bench_start_agent [BINARY [ARG...]] starts 'BINARY daemon ARG...' (by
# default $P) in the background as $daemon, its log in daemon.log, and
# waits until it answers.
bench_start_agent() {
	local bin=${1:-$P}
	[ $# -gt 0 ] && shift
	"$bin" daemon "$@" 2>daemon.log &
	daemon=$!
	for _ in $(seq 100); do "$P" list >/dev/null 2>&1 && break; sleep 0.05; done
}

# bench_now prints the time in nanoseconds.
bench_now() { date +%s%N; }

# bench_secs T0 T1 prints the seconds from T0 to T1 (bench_now's).
bench_secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.6f", (b-a)/1e9}'; }

# bench_median prints the median of the numbers on stdin, one a line.
bench_median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# bench_ratio A B prints A/B.
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN{print a/b}'; }
