package qemu

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBootTime is the boot benchmark ('make bench'): it boots the paddock
// image named by PADDOCK_BENCH_DISK (with PADDOCK_BENCH_INITRD) to "agent
// ready", and a bare busybox initramfs to the same marker, with the same
// kernel, in turn, and prints the medians and what paddock adds (goal:
// under 1 s). The goal is judged on the guest's clock, kernel start to
// marker (both print their uptime there: busybox from /proc/uptime,
// paddock with paddock.trace=1); the wall clock from QEMU's start, which
// also counts QEMU loading a bigger initramfs and attaching a disk, is
// printed beside it.
func TestBootTime(t *testing.T) {
	disk, initrd := os.Getenv("PADDOCK_BENCH_DISK"), os.Getenv("PADDOCK_BENCH_INITRD")
	if disk == "" || initrd == "" {
		t.Skip("a benchmark: set PADDOCK_BENCH_DISK and PADDOCK_BENCH_INITRD (scripts/bench-boot.sh does)")
	}
	bare := busyboxConfig(t, bareMarkerInit)
	ours := Config{Kernel: bare.Kernel, Initrd: initrd, Disks: []string{disk}, Append: "paddock.trace=1", Timeout: 2 * time.Minute}
	const runs = 5
	var bareGuest, bareWall, ourGuest, ourWall []time.Duration
	for range runs {
		g, w := timeToMarker(t, bare, bareMarker)
		bareGuest, bareWall = append(bareGuest, g), append(bareWall, w)
		g, w = timeToMarker(t, ours, ourMarker)
		ourGuest, ourWall = append(ourGuest, g), append(ourWall, w)
	}
	bg, og := median(bareGuest), median(ourGuest)
	bw, ow := median(bareWall), median(ourWall)
	fmt.Fprintf(os.Stderr, "boot: kernel start to marker (guest clock), median of %d: bare busybox initramfs %.2f s, paddock to agent ready %.2f s: paddock adds %.2f s (goal: under 1 s)\n",
		runs, bg.Seconds(), og.Seconds(), (og - bg).Seconds())
	fmt.Fprintf(os.Stderr, "boot: each run (guest clock): bare %s; paddock %s\n", seconds(bareGuest), seconds(ourGuest))
	fmt.Fprintf(os.Stderr, "boot: QEMU start to marker (wall clock), median of %d: bare %.2f s, paddock %.2f s: %.2f s more\n",
		runs, bw.Seconds(), ow.Seconds(), (ow - bw).Seconds())
	fmt.Fprintf(os.Stderr, "boot: where one boot went (paddock.trace=1, seconds since the kernel started): %s\n", traceSteps(t, ours))
}

// bareMarkerInit prints the marker with the time since the kernel started
// as soon as it can read it, then waits for the power cut.
const bareMarkerInit = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
read up idle < /proc/uptime
echo "paddock: agent ready $up"
exec /bin/busybox sleep 3600
`

// The markers and the uptime they carry, in seconds.
var (
	bareMarker = regexp.MustCompile(`paddock: agent ready ([0-9]+\.[0-9]+)`)
	ourMarker  = regexp.MustCompile(`paddock init: ([0-9]+\.[0-9]+)s agent ready`)
)

// timeToMarker boots c until marker and returns the guest's uptime there
// and the wall time since QEMU started.
func timeToMarker(t *testing.T, c Config, marker *regexp.Regexp) (guest, wall time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	vm, err := Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.PowerCut()
	m, err := vm.ExpectRegexp(ctx, marker)
	if err != nil {
		t.Fatalf("%v\n%s", err, vm.Output())
	}
	wall = time.Since(start)
	secs, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("marker %q: %v", m[0], err)
	}
	return time.Duration(secs * float64(time.Second)), wall
}

// traceSteps boots c, which has paddock.trace=1, to "agent ready" and
// returns init's timed steps on one line.
func traceSteps(t *testing.T, c Config) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vm, err := Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.PowerCut()
	if _, err := vm.ExpectRegexp(ctx, ourMarker); err != nil {
		t.Fatalf("%v\n%s", err, vm.Output())
	}
	var steps []string
	for line := range strings.Lines(vm.Output()) {
		if m := traceLine.FindStringSubmatch(strings.TrimRight(line, "\r\n")); m != nil && !strings.HasPrefix(m[2], "module ") {
			steps = append(steps, m[1]+" "+m[2])
		}
	}
	return strings.Join(steps, "; ")
}

// traceLine is a step that paddock.trace prints: "paddock init: 1.234s what".
var traceLine = regexp.MustCompile(`paddock init: ([0-9]+\.[0-9]+)s (.+)$`)

// seconds prints durations as "1.23 1.25 ..." seconds.
func seconds(ds []time.Duration) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = fmt.Sprintf("%.2f", d.Seconds())
	}
	return strings.Join(s, " ")
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}
