#!/bin/bash
# bench-run.sh times 'paddock run' of a trivial app (it exits at once)
# against bwrap sandboxing the same binary and against the bare binary, in
# one run, and prints the ratios (goal: paddock run at most 1.0x bwrap).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
N=${N:-200}

bench_need_root "create namespaces and cgroups"
command -v bwrap >/dev/null || { echo "bench: needs bwrap (make deps installs bubblewrap)" >&2; exit 1; }
bench_workdir quick

cat > "$work/src/meta/app.yaml" <<YAML
name: quick
version: "1"
apps:
  quick:
    command: bin/true
YAML
cp /bin/true "$work/src/bin/true"
cd "$work"
bench_publish quick
bench_start_agent
"$P" install quick.pdk >/dev/null 2>&1
"$P" run quick # warm up, and fail early if it does not work
bin="$PADDOCK_ROOT/apps/quick/1/bin/true"

per_run() { # CMD...: prints the mean wall time of one run in ms
	local t0 t1
	t0=$(bench_now)
	for _ in $(seq "$N"); do "$@" >/dev/null; done
	t1=$(bench_now)
	awk -v a="$t0" -v b="$t1" -v n="$N" 'BEGIN{printf "%.2f", (b-a)/n/1e6}'
}
bare=$(per_run "$bin")
bw=$(per_run bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc "$bin")
ours=$(per_run "$P" run quick)
printf 'launch of a trivial app, mean of %d runs\n' "$N"
printf '  bare binary:                                           %6s ms\n' "$bare"
printf '  bwrap --unshare-all --ro-bind / / --dev /dev --proc:   %6s ms\n' "$bw"
printf '  paddock run (+ seccomp, device cgroup, limits):        %6s ms   ratio to bwrap %.2f (goal <= 1.0), to bare %.1f\n' \
	"$ours" "$(bench_ratio "$ours" "$bw")" "$(bench_ratio "$ours" "$bare")"
