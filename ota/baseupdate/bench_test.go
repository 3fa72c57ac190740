package baseupdate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/ota/assert"
)

// TestBenchBaseWrite is 'make bench's base write (scripts/bench-base.sh):
// it runs only with PADDOCK_BENCH_SLOT set to a block device (a loop device
// the script made) and writes a slot image of PADDOCK_BENCH_MB MiB of
// random data into it twice, with dd (bs=4M conv=fsync) and with an
// Update (every chunk checked, synced with a checkpoint, the whole slot
// read back from the medium), alternating which goes first, and prints
// the best throughputs of PADDOCK_BENCH_RUNS runs (5) and their ratio
// (goal: at least 0.9); dd with oflag=direct is printed too. Then it kills
// a process writing an update over HTTP once half the image is sent, and
// prints the share of the image the resumed update transferred (goal: at
// most 55%), unless PADDOCK_BENCH_RESUME=0. PADDOCK_BENCH_MEDIUM names
// the slot's medium in the output.
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
	// Both start the same way: the image in the page cache (as a
	// download arrives in memory), the slot's pages synced and dropped.
	exec.Command("cat", img).Run()
	runs, _ := strconv.Atoi(os.Getenv("PADDOCK_BENCH_RUNS"))
	if runs <= 0 {
		runs = 5
	}
	peers := []struct {
		name string
		args []string
	}{
		{"dd bs=4M conv=fsync", []string{"bs=4M", "conv=fsync"}},
		{"dd bs=4M oflag=direct conv=fsync", []string{"bs=4M", "oflag=direct", "conv=fsync"}},
	}
	best := make([]time.Duration, len(peers)+1) // the peers, then paddock
	keep := func(k int, d time.Duration) {
		if best[k] == 0 || d < best[k] {
			best[k] = d
		}
	}
	var ratios []float64     // dd conv=fsync over paddock, run by run
	var cpus []time.Duration // paddock's CPU time, run by run
	for i := range runs {
		var line []string
		var dd, up time.Duration
		timeDD := func() {
			for k, p := range peers {
				settle(t, slot)
				start := time.Now()
				if out, err := exec.Command("dd", append([]string{"if=" + img, "of=" + slot, "status=none"}, p.args...)...).CombinedOutput(); err != nil {
					t.Fatalf("%s: %v: %s", p.name, err, out)
				}
				d := time.Since(start)
				keep(k, d)
				if k == 0 {
					dd = d
				}
				line = append(line, fmt.Sprintf("%s %v", p.name, d.Round(time.Millisecond)))
			}
		}
		timeUpdate := func() {
			spoil(t, slot, rev)
			settle(t, slot)
			u := &Update{Base: rev, Slot: slot, Checkpoint: filepath.Join(dir, fmt.Sprintf("cp%d", i)), Source: FileSource{img}, SyncEvery: syncEvery}
			cpu0, start := cpuTime(), time.Now()
			if _, err := u.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			d := time.Since(start)
			cpu := cpuTime() - cpu0
			keep(len(peers), d)
			up = d
			cpus = append(cpus, cpu)
			line = append(line, fmt.Sprintf("paddock write+verify %v (%v of CPU)", d.Round(time.Millisecond), cpu.Round(time.Millisecond)))
		}
		// Alternate which goes first, so that a drift of the machine's
		// load or of the disk's cache favours neither.
		if i%2 == 0 {
			timeDD()
			timeUpdate()
		} else {
			timeUpdate()
			timeDD()
		}
		t.Logf("run %d: %s", i+1, strings.Join(line, ", "))
		ratios = append(ratios, dd.Seconds()/up.Seconds())
	}
	slices.Sort(ratios)
	mbps := func(d time.Duration) float64 { return float64(rev.Size) / (1 << 20) / d.Seconds() }
	up := best[len(peers)]
	medium := os.Getenv("PADDOCK_BENCH_MEDIUM")
	if medium == "" {
		medium = "a loop device over a file"
	}
	fmt.Printf("base write: %d MiB slot image into %s (%s), best of %d runs each: %s %.0f MiB/s, paddock (write, check, sync, read back from the medium) %.0f MiB/s: ratio %.2f (goal >= 0.90)\n",
		rev.Size>>20, slot, medium, runs, peers[0].name, mbps(best[0]), mbps(up), best[0].Seconds()/up.Seconds())
	fmt.Printf("base write: the ratio run by run (each run's dd against its paddock): min %.2f, median %.2f, max %.2f\n", ratios[0], ratios[len(ratios)/2], ratios[len(ratios)-1])
	slices.Sort(cpus)
	fmt.Printf("base write: paddock's CPU time (user and system, its threads) per write: median %v, %.1f ms per MiB\n",
		cpus[len(cpus)/2].Round(time.Millisecond), float64(cpus[len(cpus)/2].Milliseconds())/float64(rev.Size>>20))
	for k, p := range peers[1:] {
		fmt.Printf("base write: against %s %.0f MiB/s (no read back either): ratio %.2f\n", p.name, mbps(best[k+1]), best[k+1].Seconds()/up.Seconds())
	}

	if os.Getenv("PADDOCK_BENCH_RESUME") == "0" {
		return
	}
	// The resumed update after a cut at 50%: a process writing the
	// update is killed (SIGKILL, as the power goes) once the mirror has
	// sent half the image, and the update runs again.
	first, second := benchResume(t, dir, img, rev, slot)
	res := second.res
	fmt.Printf("base resume: the writer was killed after %.1f%% of the image was sent; the resumed update transferred %.1f%% (goal <= 55%%), resumed from %.1f%%\n",
		100*float64(first)/float64(rev.Size), 100*float64(second.sent)/float64(rev.Size), 100*float64(res.Resumed)/float64(rev.Size))
}

type resumed struct {
	res  *Result
	sent int64
}

// benchResume runs an update of img into slot in a process that it kills
// once the mirror sent half the image, then the update again, and
// returns the bytes sent before the kill and the second run.
func benchResume(t *testing.T, dir, img string, rev *assert.BaseRevision, slot string) (int64, resumed) {
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	var cut atomic.Bool
	var proc atomic.Pointer[os.Process]
	killed := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cut.Load() {
			http.ServeContent(countingWriter{w, &sent}, r, "base.img", time.Time{}, bytes.NewReader(data))
			return
		}
		// The first transfer: in pieces, until half the image is sent.
		w.Header().Set("Content-Length", fmt.Sprint(rev.Size))
		for off := int64(0); off < rev.Size; off += 64 << 10 {
			if sent.Load() >= rev.Size/2 {
				if cut.CompareAndSwap(false, true) {
					proc.Load().Kill()
					close(killed)
				}
				return
			}
			n, err := w.Write(data[off:min(off+64<<10, rev.Size)])
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	cp := filepath.Join(dir, "cp-resume")
	args, _ := json.Marshal(helperArgs{Rev: rev, URL: srv.URL + "/base.img", Slot: slot, Checkpoint: cp, SyncEvery: syncEvery})
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperUpdate$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(args))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	spoil(t, slot, rev)
	settle(t, slot)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	proc.Store(cmd.Process)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); close(exited) }()
	defer testutil.Terminate(cmd.Process, exited, time.Second)
	select {
	case <-killed:
		<-exited
	case err := <-exited:
		t.Fatalf("the update process ended before the cut (%v): %s", err, out)
	case <-time.After(5 * time.Minute):
		t.Fatalf("the update process did not get half the image in 5 minutes: %s", out)
	}
	first := sent.Swap(0)
	u := &Update{Base: rev, Slot: slot, Checkpoint: cp, SyncEvery: syncEvery,
		Source: URLSource{URLs: []string{srv.URL + "/base.img"}, Size: rev.Size}}
	res, err := u.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return first, resumed{res, sent.Load()}
}

// syncEvery is the bench's Update.SyncEvery: PADDOCK_BENCH_SYNC bytes, or
// the default; PADDOCK_BENCH_BATCH sets maxBatch (bytes), to try others.
var syncEvery = func() int64 {
	if n, _ := strconv.ParseInt(os.Getenv("PADDOCK_BENCH_BATCH"), 10, 64); n > 0 {
		maxBatch = n
	}
	n, _ := strconv.ParseInt(os.Getenv("PADDOCK_BENCH_SYNC"), 10, 64)
	return n
}()

// spoil zeroes the first 4 KiB of each chunk of the slot, which holds
// the image after a dd, so that an update writes every chunk, as into a
// slot that holds another base: its scan (chunkWriter.scan) finds none.
func spoil(t *testing.T, slot string, rev *assert.BaseRevision) {
	f, err := os.OpenFile(slot, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zero := make([]byte, 4096)
	for off := int64(0); off < rev.Size; off += rev.ChunkSize {
		if _, err := f.WriteAt(zero, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// settle syncs the slot and drops its cached pages, so that each timed
// write starts from the same state of the page cache.
func settle(t *testing.T, slot string) {
	f, err := os.Open(slot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dropCache(f, 0) // 0: to the end
}

// cpuTime is the CPU time the process used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
