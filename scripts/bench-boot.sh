#!/bin/bash
# bench-boot.sh builds the amd64 appliance image and measures its boot under
# QEMU (kernel start to "agent ready") beside a bare busybox initramfs booted
# the same way, and reports the static binary's size (goal: under 20 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
P="$PWD/bin/paddock"
D="$PWD/bin/paddock-device" # what the device runs: make build-device
K=$(scripts/kernel.sh amd64 "$PWD/.cache/kernels")
modules=$(echo "$K" | sed -n 's/^modules=//p')
vmlinuz=$(echo "$K" | sed -n 's/^vmlinuz=//p')
work=$(mktemp -d /var/tmp/paddock-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export PADDOCK_KEYS="$work/keys"
cd "$work"
"$P" key create root >/dev/null
"$P" key export root > root.asc
"$P" image base --arch amd64 --paddock "$D" --trust root.asc -o base.pdk >/dev/null
"$P" image initrd --modules "$modules" --paddock "$D" -o initrd.img >/dev/null
"$P" image build --gadget "$OLDPWD/examples/gadget-amd64" --base base.pdk --kernel "$vmlinuz" \
	--initrd initrd.img --arch amd64 -o disk.img -q >/dev/null
cd "$OLDPWD"
PADDOCK_BENCH_DISK="$work/disk.img" PADDOCK_BENCH_INITRD="$work/initrd.img" \
	go test -count=1 -run 'TestBootTime$' -v ./qemu 2>&1 | grep -E '^boot:|FAIL|SKIP|_test.go' || true
printf 'binary: bin/paddock-device (the device build) is %.1f MB, bin/paddock (with the tools) %.1f MB (goal: under 20 MB)\n' \
	"$(stat -c %s "$D" | awk '{print $1/1e6}')" "$(stat -c %s "$P" | awk '{print $1/1e6}')"
