#!/bin/bash
# vm.sh builds the amd64 appliance image, with the example gadget and app
# seeded (the agent reads the board's hardware slots from the gadget), and
# boots it under QEMU. On a terminal it leaves you at a root shell on the
# guest's console once the agent is ready (try 'paddock list', 'paddock
# interfaces' and 'paddock run hello'; 'exit' powers off, Ctrl-C ends QEMU). Elsewhere, or with
# VM_COMMAND set, it runs commands in the guest and powers it off. The image
# stays in .cache/vm.
set -euo pipefail
cd "$(dirname "$0")/.."
P="$PWD/bin/paddock"
D="$PWD/bin/paddock-device" # what the device runs: make build-device
K=$(scripts/kernel.sh amd64 "$PWD/.cache/kernels")
modules=$(echo "$K" | sed -n 's/^modules=//p')
vmlinuz=$(echo "$K" | sed -n 's/^vmlinuz=//p')
kernel=$(echo "$K" | sed -n 's/^kernel=//p')
out="$PWD/.cache/vm"
mkdir -p "$out"
export PADDOCK_KEYS="$out/keys"
cd "$out"
[ -e keys/root.key ] || { "$P" key create root >/dev/null; "$P" key create pub >/dev/null; }
"$P" key export root > root.asc
"$P" key delegate --key root --to pub --role publisher --names 'hello,pc' -o pub.delegation >/dev/null
echo "== packing and signing examples/hello and the gadget examples/gadget-amd64"
"$P" pack "$OLDPWD/examples/hello" -o hello.pdk >/dev/null
"$P" sign hello.pdk --key pub --revision 1 --delegation pub.delegation >/dev/null
"$P" pack "$OLDPWD/examples/gadget-amd64" -o pc.pdk >/dev/null
"$P" sign pc.pdk --key pub --revision 1 --delegation pub.delegation >/dev/null
echo "== building the base, the initramfs and the disk image"
"$P" image base --arch amd64 --paddock "$D" --trust root.asc -o base.img --key root --revision 1
"$P" image initrd --modules "$modules" --paddock "$D" -o initrd.img
"$P" image build --gadget "$OLDPWD/examples/gadget-amd64" --base base.img --kernel "$vmlinuz" \
	--initrd initrd.img --arch amd64 --gadget-package pc.pdk --app hello.pdk -o disk.img
echo "== booting $out/disk.img under QEMU"
if [ -z "${VM_COMMAND:-}" ] && [ -t 0 ] && [ -t 1 ]; then
	echo "== a root shell on the guest's console once the agent is ready: try 'paddock run hello'; 'exit' powers off"
	exec "$P" vm run disk.img --kernel "$kernel" --initrd initrd.img --shell
fi
cmd=${VM_COMMAND:-'paddock list; paddock interfaces; paddock run hello; paddock changes'}
"$P" vm run disk.img --kernel "$kernel" --initrd initrd.img -v -- "$cmd"
