#!/bin/bash
# bench-install.sh measures 'paddock install' of a 256 MiB package against
# what a user would do by hand, 'sha256sum FILE && cp FILE DEST', on the same
# file in the same run, and prints the ratio (goal: at most 1.25).
set -euo pipefail
cd "$(dirname "$0")/.."
P="$PWD/bin/paddock"
SIZE_MB=${SIZE_MB:-256}
RUNS=${RUNS:-3}

if [ "$(id -u)" != 0 ]; then
	echo "bench: needs root, to loop-mount app revisions" >&2
	exit 1
fi
work=$(mktemp -d /var/tmp/paddock-bench.XXXXXX)
export PADDOCK_ROOT="$work/root" PADDOCK_KEYS="$work/keys"
daemon=""
cleanup() {
	set +e
	[ -n "$daemon" ] && { "$P" remove big >/dev/null 2>&1; kill "$daemon"; wait "$daemon"; } 2>/dev/null
	grep -o " $work/root/apps/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$PADDOCK_ROOT" "$work/src/meta" "$work/src/bin" "$work/dest"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

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
"$P" key create root >/dev/null; "$P" key create pub >/dev/null
"$P" key export root > root.asc; "$P" key trust root.asc >/dev/null
"$P" key delegate --key root --to pub --role publisher --names big -o pub.delegation
"$P" pack src -o big.pdk >/dev/null
"$P" sign big.pdk --key pub --revision 1 --delegation pub.delegation >/dev/null
size=$(stat -c %s big.pdk)
"$P" daemon 2>daemon.log & daemon=$!
for _ in $(seq 100); do "$P" list >/dev/null 2>&1 && break; sleep 0.05; done
cat big.pdk > /dev/null # both sides start from a warm page cache

peer=(); peersync=(); ours=()
for i in $(seq "$RUNS"); do
	rm -f dest/big.pdk; sync
	t0=$(now); sha256sum big.pdk >/dev/null && cp big.pdk dest/big.pdk; t1=$(now)
	peer+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
	rm -f dest/big.pdk; sync
	t0=$(now); sha256sum big.pdk >/dev/null && cp big.pdk dest/big.pdk && sync -f dest/big.pdk; t1=$(now)
	peersync+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
	sync
	t0=$(now); "$P" install big.pdk >/dev/null 2>&1; t1=$(now)
	ours+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")
	"$P" remove big >/dev/null 2>&1
done
p=$(printf '%s\n' "${peer[@]}" | median)
ps=$(printf '%s\n' "${peersync[@]}" | median)
o=$(printf '%s\n' "${ours[@]}" | median)
printf 'install of a %d MiB package (%d bytes), median of %d runs\n' "$SIZE_MB" "$size" "$RUNS"
printf '  paddock install (verify while streaming, fsync, mount, switch): %6.3f s\n' "$o"
printf '  sha256sum FILE && cp FILE DEST:                                  %6.3f s   ratio %.2f (goal <= 1.25)\n' "$p" "$(awk -v a="$o" -v b="$p" 'BEGIN{print a/b}')"
printf '  sha256sum FILE && cp FILE DEST && sync (durable, like paddock):  %6.3f s   ratio %.2f\n' "$ps" "$(awk -v a="$o" -v b="$ps" 'BEGIN{print a/b}')"
