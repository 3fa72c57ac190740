#!/bin/bash
# bench-base.sh measures writing a base into the inactive slot, as a base
# update does (every chunk checked against the signed digests, synced with a
# checkpoint, the whole slot read back from the medium and checked),
# against 'dd bs=4M conv=fsync' of the same slot image to the same slot (a
# loop device over a file in /var/tmp), in the same run: each side starts
# with the image in the page cache and the slot's pages dropped, the order
# alternates, and the best of PADDOCK_BENCH_RUNS (5) runs of each is kept.
# It prints the ratio (goal: at least 0.9), and for comparison the ratio to
# 'dd bs=4M oflag=direct conv=fsync'; then the same with the loop device's
# I/O going to the disk (losetup --direct-io=on), as a partition's does. Then it kills a process writing an
# update over HTTP once half the image is sent and prints the share of the
# image that the resumed update transfers (goal: at most 55%).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-256}

if [ "$(id -u)" != 0 ]; then
	echo "bench: needs root, to attach a loop device as the slot" >&2
	exit 1
fi
work=$(mktemp -d /var/tmp/paddock-bench-base.XXXXXX)
loop=""
cleanup() {
	set +e
	[ -n "$loop" ] && losetup --detach "$loop"
	rm -rf "$work"
}
trap cleanup EXIT
# The slot's blocks exist, as a partition's do: a sparse file would make
# whichever writes it first pay for allocating them.
dd if=/dev/zero of="$work/slot" bs=4M count=$(((SIZE_MB + 16) / 4)) conv=fsync status=none
loop=$(losetup --find --show "$work/slot")
PADDOCK_BENCH_SLOT="$loop" PADDOCK_BENCH_MB="$SIZE_MB" \
	go test -v -count=1 -run '^TestBenchBaseWrite$' -timeout 20m ./ota/baseupdate/ | tee "$work/out" | grep -E "^base (write|resume)|FAIL|panic|bench_test"
# The same slot with the loop device's I/O going straight to the disk
# (--direct-io=on), as a partition's does: above, the slot's medium is
# the page cache of the file behind it, where every side is bound by the
# CPU, not by the medium as on a device.
losetup --detach "$loop"
loop=$(losetup --find --show --direct-io=on "$work/slot")
PADDOCK_BENCH_SLOT="$loop" PADDOCK_BENCH_MB="$SIZE_MB" PADDOCK_BENCH_RESUME=0 PADDOCK_BENCH_MEDIUM="a loop device with direct I/O to the disk" \
	go test -v -count=1 -run '^TestBenchBaseWrite$' -timeout 20m ./ota/baseupdate/ | tee "$work/out-direct" | grep -E "^base (write|resume)|FAIL|panic|bench_test"
