package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// fillDataScript fills the guest's data partition to the last block, root's
// reserved blocks included, as an app running as root could: fallocate in
// halving steps (no data to write, so it is quick under TCG), then dd for
// what fallocate cannot take.
const fillDataScript = `f=/var/lib/paddock/data/hello/1/fill
n=0; size=1073741824
while [ $size -ge 4096 ]; do
	if fallocate -o $n -l $size $f 2>/dev/null; then n=$((n+size)); else size=$((size/2)); fi
done
dd if=/dev/zero of=$f.dd bs=64k 2>/dev/null
echo full-avail=$(stat -f -c %a /var/lib/paddock)
dd if=/dev/zero of=$f.more bs=4k count=1 2>/dev/null; echo full-write=$?`

// agentPIDScript prints the PID of the agent ('paddock daemon', which the
// base's busybox has no pgrep to find).
const agentPIDScript = `$(for p in /proc/[0-9]*; do [ "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" = "paddock daemon " ] && echo ${p#/proc/}; done)`

// TestApplianceFullDataPartition pins the last bullet of issue 9 item 8:
// in the appliance, with the data partition full, 'paddock remove' panicked
// the agent, so nothing but a root shell could free the space. Here the
// seeded hello app's data fills the partition; then remove must succeed
// with the same agent process running, and give the space back.
func TestApplianceFullDataPartition(t *testing.T) {
	t.Parallel() // under TCG a VM keeps one core busy: two VM tests at once use both
	vmlinux, vmlinuz, modules := guestKernel(t)
	d := newDevice(t)
	d.setupKeys("hello")
	hello := d.packHello("1.0", 1)

	d.buildDisk(vmlinuz, modules, hello)

	script := strings.Join([]string{
		"echo agent-before=" + agentPIDScript,
		"paddock list",
		fillDataScript,
		"paddock remove hello; echo remove=$?",
		"paddock list; echo list=$?",
		"echo agent-after=" + agentPIDScript,
		"set -- $(stat -f -c '%a %S' /var/lib/paddock); echo free-after=$(($1 * $2))",
		"echo data=$(ls /var/lib/paddock/data)",
	}, "\n")
	out := d.ok("vm", "run", "disk.img", "--kernel", vmlinux, "--initrd", "initrd.img", "--", script)
	t.Logf("the guest answered:\n%s", out)

	value := func(key string) string {
		m := regexp.MustCompile(`(?m)^` + key + `=(.*)$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("the guest's answer lacks %s=", key)
		}
		return strings.TrimSpace(m[1])
	}
	if !strings.Contains(out, "hello") {
		t.Errorf("the seeded hello app is not listed")
	}
	if avail, write := value("full-avail"), value("full-write"); avail != "0" || write == "0" {
		t.Errorf("after filling: got %s blocks available and a 4 KiB write exiting %s, want the partition full", avail, write)
	}
	if got := value("remove"); got != "0" {
		t.Errorf("paddock remove on the full partition: got exit %s, want 0", got)
	}
	if got := value("list"); got != "0" {
		t.Errorf("paddock list after remove: got exit %s, want 0", got)
	}
	before, after := value("agent-before"), value("agent-after")
	if before == "" || before != after {
		t.Errorf("got agent PID %q before and %q after remove, want the same agent running", before, after)
	}
	free, err := strconv.ParseInt(value("free-after"), 10, 64)
	if err != nil || free < 400<<20 {
		t.Errorf("after remove: got %q bytes available on the 512 MiB data partition, want the space back", value("free-after"))
	}
	if got := value("data"); got != "" {
		t.Errorf("after remove: got %q in the data folder, want nothing", got)
	}
}
