#!/bin/bash
# vm.sh builds the amd64 appliance image, with the example app seeded, boots
# it under QEMU showing its console, runs a few commands in the guest once the
# agent is ready (VM_COMMAND replaces them) and powers it off. The image stays
# in .cache/vm: 'bin/paddock vm run .cache/vm/disk.img' boots it again with
# the terminal as its console.
set -euo pipefail
cd "$(dirname "$0")/.."
P="$PWD/bin/paddock"
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
"$P" key delegate --key root --to pub --role publisher --names 'hello' -o pub.delegation >/dev/null
echo "== packing and signing examples/hello"
"$P" pack "$OLDPWD/examples/hello" -o hello.pdk >/dev/null
"$P" sign hello.pdk --key pub --revision 1 --delegation pub.delegation >/dev/null
echo "== building the base, the initramfs and the disk image"
"$P" image base --arch amd64 --paddock "$P" --trust root.asc -o base.pdk
"$P" image initrd --modules "$modules" --paddock "$P" -o initrd.img
"$P" image build --gadget "$OLDPWD/examples/gadget-amd64" --base base.pdk --kernel "$vmlinuz" \
	--initrd initrd.img --arch amd64 --app hello.pdk -o disk.img
echo "== booting $out/disk.img under QEMU"
cmd=${VM_COMMAND:-'paddock list; paddock run hello; paddock changes'}
"$P" vm run disk.img --kernel "$kernel" --initrd initrd.img -v -- "$cmd"
