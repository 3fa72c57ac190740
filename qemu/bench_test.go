package qemu

import (
	"context"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"
)

// TestBootTime is the boot benchmark ('make bench'): it boots the paddock
// image named by PADDOCK_BENCH_DISK (with PADDOCK_BENCH_INITRD) to "agent
// ready", and a bare busybox initramfs to the same marker, with the same
// kernel, in turn, and prints the medians and what paddock adds (goal:
// under 1 s).
func TestBootTime(t *testing.T) {
	disk, initrd := os.Getenv("PADDOCK_BENCH_DISK"), os.Getenv("PADDOCK_BENCH_INITRD")
	if disk == "" || initrd == "" {
		t.Skip("a benchmark: set PADDOCK_BENCH_DISK and PADDOCK_BENCH_INITRD (scripts/bench-boot.sh does)")
	}
	bare := bootConfig(t)
	ours := Config{Kernel: bare.Kernel, Initrd: initrd, Disks: []string{disk}, Timeout: 2 * time.Minute}
	const runs = 3
	var bareTimes, ourTimes []time.Duration
	for range runs {
		bareTimes = append(bareTimes, timeToMarker(t, bare))
		ourTimes = append(ourTimes, timeToMarker(t, ours))
	}
	b, o := median(bareTimes), median(ourTimes)
	fmt.Fprintf(os.Stderr, "boot: kernel start to marker, median of %d: bare busybox initramfs %.2f s, paddock to agent ready %.2f s: paddock adds %.2f s (goal: under 1 s)\n",
		runs, b.Seconds(), o.Seconds(), (o - b).Seconds())
}

// timeToMarker boots c and returns the time until "paddock: agent ready".
func timeToMarker(t *testing.T, c Config) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	vm, err := Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.PowerCut()
	if err := vm.Expect(ctx, "paddock: agent ready"); err != nil {
		t.Fatalf("%v\n%s", err, vm.Output())
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}
