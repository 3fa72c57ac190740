#!/bin/bash
# e2e-full.sh boots the arm64 appliance under QEMU (full emulation of a
# cortex-a57) to the point the amd64 one reaches in 'make test': the agent
# comes up, adopts a seeded app and runs it in its sandbox. In the same boot
# it checks a real GPIO controller (issue 11): the virt machine's PL061 is
# /dev/gpiochip0, the gadget's gpio0 slot; an app with a gpio plug cannot
# open it until 'paddock connect', then asks the driver for the chip's info
# (GPIO_GET_CHIPINFO), and cannot again after 'paddock disconnect'. It installs
# what it needs: the arm64 kernel, qemu-system-arm, the arm64 busybox, and
# the arm64 paddock binary (scripts/cross.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
missing=""
for p in qemu-system-arm; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
scripts/cross.sh arm64 >/dev/null
K=$(scripts/kernel.sh arm64 "$root/.cache/kernels")
modules=$(echo "$K" | sed -n 's/^modules=//p')
vmlinuz=$(echo "$K" | sed -n 's/^vmlinuz=//p')
out="$root/.cache/e2e-arm64"
mkdir -p "$out"
cd "$out"
# arm64 userland for the base: busybox, and apparmor_parser with its
# libraries unpacked into a sysroot.
if [ ! -x sysroot/bin/busybox ] || [ ! -x sysroot/sbin/apparmor_parser ]; then
	rm -f ./*.deb
	apt-get download busybox-static:arm64 apparmor:arm64 libapparmor1:arm64 libc6:arm64 >/dev/null 2>&1
	for deb in ./*_arm64.deb; do dpkg -x "$deb" sysroot; done
fi
P="$root/bin/paddock"
P64="$root/bin/paddock-linux-arm64"
export PADDOCK_KEYS="$out/keys"
[ -e keys/root.key ] || { "$P" key create root >/dev/null; "$P" key create pub >/dev/null; }
"$P" key export root > root.asc
"$P" key delegate --key root --to pub --role publisher --names hello,escape,virt -o pub.delegation >/dev/null
"$P" pack "$root/examples/hello" -o hello.pdk >/dev/null
"$P" sign hello.pdk --key pub --revision 1 --arch arm64 --delegation pub.delegation >/dev/null
# The escape test app (cmd/paddock/testdata/escape) with a gpio plug, which
# is not auto-connected; its case gpiochip0 opens /dev/gpiochip0 and issues
# GPIO_GET_CHIPINFO. The gadget is installed as a package, for its slots.
rm -rf escape-src && mkdir -p escape-src/meta
(cd "$root/cmd/paddock" && CGO_ENABLED=0 GOARCH=arm64 go build -trimpath -o "$out/escape-src/bin/escape" ./testdata/escape)
printf '%s\n' 'name: escape' 'version: "1"' 'summary: Opens device nodes for the tests' 'apps:' '  escape:' \
	'    command: bin/escape' '    plugs:' '      gpio:' > escape-src/meta/app.yaml
"$P" pack escape-src -o escape.pdk >/dev/null
"$P" sign escape.pdk --key pub --revision 1 --arch arm64 --delegation pub.delegation >/dev/null
"$P" pack "$root/examples/gadget-arm64" -o virt.pdk >/dev/null
"$P" sign virt.pdk --key pub --revision 1 --arch arm64 --delegation pub.delegation >/dev/null
"$P" image base --arch arm64 --paddock "$P64" --busybox sysroot/bin/busybox --sysroot "$out/sysroot" \
	--trust root.asc -o base.pdk >/dev/null
"$P" image initrd --modules "$modules" --paddock "$P64" -o initrd.img >/dev/null
"$P" image build --gadget "$root/examples/gadget-arm64" --base base.pdk --kernel "$vmlinuz" \
	--initrd initrd.img --arch arm64 --gadget-package virt.pdk --app hello.pdk --app escape.pdk -o disk.img -q >/dev/null
start=$(date +%s%N)
result=$("$P" vm run disk.img --arch arm64 --kernel "$vmlinuz" --initrd initrd.img -- \
	'uname -m; paddock list; paddock run hello; grep -c "^paddock.hello.hello " /sys/kernel/security/apparmor/profiles | sed "s/^/apparmor-profiles=/"
	gpio() { paddock run escape -- gpiochip0 2>&1 | sed "s/^/gpio-$1: /"; }
	ls -l /dev/gpiochip0; gpio before; paddock connect escape:gpio gpio0; gpio connected; paddock disconnect escape:gpio; gpio disconnected')
end=$(date +%s%N)
echo "$result"
want() { echo "$result" | grep -Eq "$1" || { echo "e2e-full: no line matching $1 in the guest's output" >&2; exit 1; }; }
want '^aarch64$'
want 'Hello from hello \(revision 1\)!'
want '^apparmor-profiles=1$' # the agent loaded the profile with the arm64 apparmor_parser
# The PL061 (8 lines, labelled with its device's name, 9030000.pl061):
# refused before the connect and after the disconnect, by the device cgroup
# (EPERM) or the node's owner bits (EACCES).
want '^gpio-before: gpiochip0: (EPERM|EACCES)$'
want '^gpio-connected: gpiochip0: name=gpiochip0 label=[^ ]*pl061 lines=8$'
want '^gpio-disconnected: gpiochip0: (EPERM|EACCES)$'
printf 'e2e-full: the arm64 appliance booted, adopted and ran hello, and granted and revoked its PL061 GPIO chip, in %.1f s\n' "$(awk -v a="$start" -v b="$end" 'BEGIN{print (b-a)/1e9}')"
# Base updates, whole matrix (amd64): 50 power cuts around the boot
# environment's writes, two panicking attempts, a hung init reset by the
# i6300esb watchdog, an agent never ready; the update and its 50 power
# cuts during the slot write, and the update back.
cd "$root"
PADDOCK_E2E_FULL=1 go test -count=1 -timeout 90m -run 'TestApplianceBase(Try|Update)InQEMU$' ./cmd/paddock/
