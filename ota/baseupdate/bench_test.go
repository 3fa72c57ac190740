package baseupdate

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestBenchBaseWrite is 'make bench's base write (scripts/bench-base.sh):
// it runs only with PADDOCK_BENCH_SLOT set to a block device (a loop device
// the script made) and writes a slot image of PADDOCK_BENCH_MB MiB of
// random data into it twice, with dd (bs=4M conv=fsync) and with an
// Update (every chunk checked, synced with a checkpoint, the whole slot
// read back), and prints the throughputs and their ratio (goal: at least
// 0.9). Then it cuts a download over HTTP at 50% and prints the share of
// the image the resumed update transferred (goal: at most 55%).
func TestBenchBaseWrite(t *testing.T) {
	slot := os.Getenv("PADDOCK_BENCH_SLOT")
	if slot == "" {
		t.Skip("the base write bench (scripts/bench-base.sh sets PADDOCK_BENCH_SLOT)")
	}
	mb, _ := strconv.Atoi(os.Getenv("PADDOCK_BENCH_MB"))
	if mb <= 0 {
		mb = 256
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "base.squashfs")
	data := make([]byte, mb<<20)
	rand.Read(data)
	if err := os.WriteFile(raw, data, 0o600); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "base.img")
	im, err := MakeImage(raw, img)
	if err != nil {
		t.Fatal(err)
	}
	rev := im.Revision()
	rev.Name = "bench"
	exec.Command("cat", img).Run() // both start from a warm page cache
	runs := 3
	var ddBest, upBest time.Duration
	for i := range runs {
		start := time.Now()
		if out, err := exec.Command("dd", "if="+img, "of="+slot, "bs=4M", "conv=fsync", "status=none").CombinedOutput(); err != nil {
			t.Fatalf("dd: %v: %s", err, out)
		}
		dd := time.Since(start)
		cp := filepath.Join(dir, fmt.Sprintf("cp%d", i))
		u := &Update{Base: rev, Slot: slot, Checkpoint: cp, Source: FileSource{img}, SyncEvery: syncEvery}
		start = time.Now()
		if _, err := u.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		up := time.Since(start)
		if i == 0 || dd < ddBest {
			ddBest = dd
		}
		if i == 0 || up < upBest {
			upBest = up
		}
		t.Logf("run %d: dd %v, paddock write+verify %v", i+1, dd.Round(time.Millisecond), up.Round(time.Millisecond))
	}
	mbps := func(d time.Duration) float64 { return float64(rev.Size) / (1 << 20) / d.Seconds() }
	fmt.Printf("base write: %d MiB slot image into %s: dd %.0f MiB/s, paddock (write, check, sync, read back) %.0f MiB/s: ratio %.2f (goal >= 0.90)\n",
		rev.Size>>20, slot, mbps(ddBest), mbps(upBest), ddBest.Seconds()/upBest.Seconds())

	// The resumed update after a cut at 50%.
	var sent atomic.Int64
	var cut atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, _ := os.Open(img)
		defer f.Close()
		http.ServeContent(countingWriter{w, &sent}, r, "base.img", time.Time{}, f)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cp := filepath.Join(dir, "cp-resume")
	u := &Update{Base: rev, Slot: slot, Checkpoint: cp, SyncEvery: syncEvery,
		Source: URLSource{URLs: []string{srv.URL + "/base.img"}, Size: rev.Size}}
	u.Progress = func(done, total int64) {
		if sent.Load() >= rev.Size/2 && cut.CompareAndSwap(false, true) {
			cancel()
		}
	}
	go func() {
		for !cut.Load() {
			if sent.Load() >= rev.Size/2 && cut.CompareAndSwap(false, true) {
				cancel()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if _, err := u.Run(ctx); err == nil {
		t.Fatal("the cut update finished")
	}
	first := sent.Load()
	sent.Store(0)
	res, err := u.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("base resume: cut after %.1f%% of the image was sent; the resumed update transferred %.1f%% (goal <= 55%%), resumed from %.1f%%\n",
		100*float64(first)/float64(rev.Size), 100*float64(sent.Load())/float64(rev.Size), 100*float64(res.Resumed)/float64(rev.Size))
}

// syncEvery is the bench's Update.SyncEvery: PADDOCK_BENCH_SYNC bytes, or
// the default.
var syncEvery = func() int64 {
	n, _ := strconv.ParseInt(os.Getenv("PADDOCK_BENCH_SYNC"), 10, 64)
	return n
}()
