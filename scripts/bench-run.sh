#!/bin/bash
# bench-run.sh times 'paddock run' of a trivial app (it exits at once)
# against bwrap sandboxing the same binary and against the bare binary, in
# one run, and prints the ratios (goal: paddock run at most 1.0x bwrap).
set -euo pipefail
cd "$(dirname "$0")/.."
P="$PWD/bin/paddock"
N=${N:-200}

if [ "$(id -u)" != 0 ]; then
	echo "bench: needs root, to create namespaces and cgroups" >&2
	exit 1
fi
command -v bwrap >/dev/null || { echo "bench: needs bwrap (make deps installs bubblewrap)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/paddock-bench.XXXXXX)
export PADDOCK_ROOT="$work/root" PADDOCK_KEYS="$work/keys"
daemon=""
cleanup() {
	set +e
	[ -n "$daemon" ] && { "$P" remove quick >/dev/null 2>&1; kill "$daemon"; wait "$daemon"; } 2>/dev/null
	grep -o " $work/root/apps/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$PADDOCK_ROOT" "$work/src/meta" "$work/src/bin"

cat > "$work/src/meta/app.yaml" <<YAML
name: quick
version: "1"
apps:
  quick:
    command: bin/true
YAML
cp /bin/true "$work/src/bin/true"
cd "$work"
"$P" key create root >/dev/null; "$P" key create pub >/dev/null
"$P" key export root > root.asc; "$P" key trust root.asc >/dev/null
"$P" key delegate --key root --to pub --role publisher --names quick -o pub.delegation >/dev/null
"$P" pack src -o quick.pdk >/dev/null
"$P" sign quick.pdk --key pub --revision 1 --delegation pub.delegation >/dev/null
"$P" daemon 2>daemon.log & daemon=$!
for _ in $(seq 100); do "$P" list >/dev/null 2>&1 && break; sleep 0.05; done
"$P" install quick.pdk >/dev/null 2>&1
"$P" run quick # warm up, and fail early if it does not work
bin="$PADDOCK_ROOT/apps/quick/1/bin/true"

now() { date +%s%N; }
per_run() { # NAME CMD...: prints the mean wall time of one run in ms
	local t0 t1
	t0=$(now)
	for _ in $(seq "$N"); do "$@" >/dev/null; done
	t1=$(now)
	awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN{printf "%.2f", (b-a)/n/1e6}'
}
bare=$(per_run "$bin")
bw=$(per_run bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc "$bin")
ours=$(per_run "$P" run quick)
printf 'launch of a trivial app, mean of %d runs\n' "$N"
printf '  bare binary:                                           %6s ms\n' "$bare"
printf '  bwrap --unshare-all --ro-bind / / --dev /dev --proc:   %6s ms\n' "$bw"
printf '  paddock run (+ seccomp, device cgroup, limits):        %6s ms   ratio to bwrap %.2f (goal <= 1.0), to bare %.1f\n' \
	"$ours" "$(awk -v a="$ours" -v b="$bw" 'BEGIN{print a/b}')" "$(awk -v a="$ours" -v b="$bare" 'BEGIN{print a/b}')"
