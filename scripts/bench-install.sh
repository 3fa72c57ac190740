#!/bin/bash
# bench-install.sh measures 'paddock install' of a 256 MiB package against
# what a user would do by hand, 'sha256sum FILE && cp FILE DEST', on the same
# file in the same run, and prints the ratio (goal: at most 1.25).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
SIZE_MB=${SIZE_MB:-256}
RUNS=${RUNS:-3}

bench_need_root "loop-mount app revisions"
bench_workdir big
mkdir -p "$work/dest"

# A package of SIZE_MB of incompressible data: the worst case for one pass.
cat > "$work/src/meta/app.yaml" <<YAML
name: big
version: "1"
apps:
  big:
    command: bin/big
YAML
printf '#!/bin/sh\n' > "$work/src/bin/big"; chmod +x "$work/src/bin/big"
head -c "${SIZE_MB}M" /dev/urandom > "$work/src/payload"
cd "$work"
bench_publish big
size=$(stat -c %s big.pdk)
bench_start_agent
cat big.pdk > /dev/null # both sides start from a warm page cache

peer=(); peersync=(); ours=()
for i in $(seq "$RUNS"); do
	rm -f dest/big.pdk; sync
	t0=$(bench_now); sha256sum big.pdk >/dev/null && cp big.pdk dest/big.pdk; t1=$(bench_now)
	peer+=("$(bench_secs "$t0" "$t1")")
	rm -f dest/big.pdk; sync
	t0=$(bench_now); sha256sum big.pdk >/dev/null && cp big.pdk dest/big.pdk && sync -f dest/big.pdk; t1=$(bench_now)
	peersync+=("$(bench_secs "$t0" "$t1")")
	sync
	t0=$(bench_now); "$P" install big.pdk >/dev/null 2>&1; t1=$(bench_now)
	ours+=("$(bench_secs "$t0" "$t1")")
	"$P" remove big >/dev/null 2>&1
done
p=$(printf '%s\n' "${peer[@]}" | bench_median)
ps=$(printf '%s\n' "${peersync[@]}" | bench_median)
o=$(printf '%s\n' "${ours[@]}" | bench_median)
printf 'install of a %d MiB package (%d bytes), median of %d runs\n' "$SIZE_MB" "$size" "$RUNS"
printf '  paddock install (verify while streaming, fsync, mount, switch): %6.3f s\n' "$o"
printf '  sha256sum FILE && cp FILE DEST:                                  %6.3f s   ratio %.2f (goal <= 1.25)\n' "$p" "$(bench_ratio "$o" "$p")"
printf '  sha256sum FILE && cp FILE DEST && sync (durable, like paddock):  %6.3f s   ratio %.2f\n' "$ps" "$(bench_ratio "$o" "$ps")"
