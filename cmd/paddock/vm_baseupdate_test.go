package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/internal/mosquittotest"
	"paddock.dev/paddock/internal/testutil"
	"paddock.dev/paddock/mqtt/fleet"
	"paddock.dev/paddock/qemu"
)

// TestApplianceBaseUpdateInQEMU updates the base of a booted appliance
// over the fleet (issue 13, items 2 to 4 and 6, and its first test): the
// operator's signed 'paddock fleet send ... base-update URL' goes through
// a real mosquitto on the host, the device downloads the slot image from
// an HTTP server on the host's loopback (both reached through QEMU's
// restricted user network), writes slot b (copying the chunks slot a
// holds), reads it back and sets the try, and reboots; init tries slot b
// through dm-verity, the agent finds the device healthy and commits it,
// and the fleet's answer is that outcome (done, committed). Then B → A the
// same way, in the tried boot of b.
//
// Each update meets power cuts (QEMU killed) while it writes the slot, at
// points chosen by events, not by sleeps: one just after the boot
// environment marks the slot as being written, then one just after each
// checkpoint the write records (the guest prints the checkpoint once it
// is synced): 3 for A → B, 2 for B → A. With PADDOCK_E2E_FULL=1, random
// points of the resumed writes too, and more updates when the writes end
// before, up to 50 cuts during slot writes in all. After each cut the
// environment keeps the running slot known good and boots no
// half-written slot, the next boot's agent
// resumes the write (the final write's log says it resumed from the last
// checkpoint), and the fleet command still gets its answer. (A network
// cut mid-transfer is TestFleetRolloutOfABase's: QEMU's guestfwd carries
// one connection per QEMU run, and one the host closes is not reopened, so
// a cut connection cannot be resumed within a boot here.)
//
// The update's source is a URL, the same in every boot: an earlier version
// of this test updated from a disk the guest named /dev/vdb in the boot
// that started the update, and the kernel probes virtio disks
// asynchronously, so a resumed boot could find the assertion disk there
// (the CI failure of 446 s: the resumed write failed and the test waited
// out the VM's console timeout).
// fullMatrixCuts is how many power cuts during the slot's write the test
// makes with PADDOCK_E2E_FULL=1 (issue 13: at least 50 in make e2e-full).
const fullMatrixCuts = 50

func TestApplianceBaseUpdateInQEMU(t *testing.T) {
	t.Parallel() // under TCG a VM keeps one core busy: two VM tests at once use both
	f := newFleetBase(t)
	begin := time.Now()
	v := f.boot(t, "slot a")
	f.waitOnline(t, v)
	type step struct {
		name, from, to string
		rev            int
		checkpointCuts int
	}
	steps := []step{{"b2", "a", "b", 2, 2}, {"a3", "b", "a", 3, 1}}
	cuts := 0
	for k := 0; k < len(steps); k++ {
		s := steps[k]
		random := 0
		if fullMatrix() {
			// Random points, for the matrix's cuts in all (the marked and
			// checkpoint cuts of this step left out).
			random = max(0, fullMatrixCuts-cuts-1-s.checkpointCuts)
		}
		f.b.d.ok("image", "base", "--arch", "amd64", "--paddock", binary, "--trust", "root.asc", "--agent-config", "agent.yaml",
			"-o", filepath.Join("artifacts", s.name+".img"), "--version", fmt.Sprint(s.rev), "--key", "root", "--revision", fmt.Sprint(s.rev))
		sent := time.Now()
		answer := f.send(t, s.name)

		// Cut 1: just after the agent marked the slot as being written.
		if !f.waitMarked(v, s.to, 3*time.Minute) {
			f.fail(t, v, fmt.Sprintf("update %s: the slot was never marked as being written", s.name))
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		cuts++
		f.cut(t, v, fmt.Sprintf("power cut %d, after slot %s was marked as being written", cuts, s.to), s.from, s.to)

		// Then just after each checkpoint: the next boot's agent resumes
		// from it, and from the first cut on.
		// verified is the checkpoint before the last cut, earlier the one
		// before it.
		verified, earlier, tried := int64(0), int64(0), false
		for i := 0; i < random+s.checkpointCuts && !tried; i++ {
			v = f.boot(t, fmt.Sprintf("resume %d of %s", i+1, s.name))
			what := ""
			if i < random {
				// A random point of the resumed write (PADDOCK_E2E_FULL=1).
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Millisecond)
				what = fmt.Sprintf("power cut %d, at a random point of the resumed write", cuts+1)
			} else {
				n, ok := f.nextCheckpoint(v, verified)
				if !ok {
					// The write got to its end before a new checkpoint
					// showed (a fast machine): the agent reboots to the try.
					if tried = f.waitTry(t, v, s.from, s.to); !tried {
						f.fail(t, v, fmt.Sprintf("resume %d of %s: no new checkpoint, and no try of slot %s", i+1, s.name, s.to))
					}
					break
				}
				earlier, verified = verified, n
				what = fmt.Sprintf("power cut %d, after the checkpoint of %d chunks", cuts+1, verified)
			}
			cuts++
			tried = f.cut(t, v, what, s.from, s.to)
		}
		if !tried {
			// The last write runs to its end, and the agent reboots to try
			// the slot.
			v = f.boot(t, "the write of "+s.name+" to its end")
			if !f.waitTry(t, v, s.from, s.to) {
				f.fail(t, v, fmt.Sprintf("update %s: the agent did not reboot to try slot %s", s.name, s.to))
			}
		}

		// The tried boot: the agent commits once healthy, and the fleet
		// command's answer is that outcome.
		v = f.boot(t, "tried boot of "+s.to)
		var res fleet.SendResult
		var r sendAnswer
		select {
		case r = <-answer:
			if r.err != nil {
				f.fail(t, v, fmt.Sprintf("update %s: fleet send: %v\n%s", s.name, r.err, r.out))
			}
			if err := json.Unmarshal([]byte(r.out), &res); err != nil {
				f.fail(t, v, fmt.Sprintf("update %s: cannot read fleet send's answer: %v\n%s", s.name, err, r.out))
			}
		case <-time.After(3 * time.Minute):
			f.fail(t, v, fmt.Sprintf("update %s: no answer to fleet send within 3 min of the tried boot", s.name))
		}
		t.Logf("update %s: the fleet's answer %v after the command: %s", s.name, time.Since(sent).Round(time.Second), r.out)
		var out struct {
			Revision  int    `json:"revision"`
			Slot      string `json:"slot"`
			Committed bool   `json:"committed"`
		}
		if len(res.Devices) != 1 || res.Devices[0].Result != "done" || json.Unmarshal(res.Devices[0].Output, &out) != nil ||
			out.Revision != s.rev || out.Slot != s.to || !out.Committed {
			f.fail(t, v, fmt.Sprintf("update %s: got the answer %+v, want done, revision %d committed in slot %s", s.name, res, s.rev, s.to))
		}
		st, chgs := f.report(t, v, s.name)
		img, err := os.Stat(filepath.Join(f.b.d.work, "artifacts", s.name+".img"))
		if err != nil {
			t.Fatal(err)
		}
		resumed := verified << 20
		if resumed >= img.Size() {
			// The checkpoint of the whole image: the cut came after the
			// write's end, and the write ran again only when the cut came
			// before the change recorded that end. The last write resumed
			// at least the checkpoint before.
			resumed = earlier << 20
		}
		f.checkCommitted(t, s.name, s.to, s.from, s.rev, st, chgs, resumed)
		if e := f.b.env(t, nil); e.Slot != s.to || e.Trying != "" || e.Try != "" {
			t.Errorf("update %s: got the environment %+v, want slot %s committed", s.name, *e, s.to)
		}
		if fullMatrix() && k == len(steps)-1 && cuts < fullMatrixCuts {
			// The writes ended before the matrix had its cuts (each resumed
			// write gets further): one more update, back to the other slot.
			steps = append(steps, step{fmt.Sprintf("%s%d", s.from, s.rev+1), s.to, s.from, s.rev + 1, 1})
		}
	}
	v.PowerCut()
	v.Wait()
	t.Logf("A → B → A over the fleet with %d power cuts: %v", cuts, time.Since(begin).Round(time.Second))
}

// fleetBase is an appliance disk whose agent reaches a broker on the host,
// an HTTP server on the host's loopback that serves the artifacts, and
// the operator's key.
type fleetBase struct {
	b      *baseDisk
	broker *mosquittotest.Broker
	http   *artifactServer
	guest  []qemu.GuestForward
	// sendCtx ends the fleet sends at the test's end.
	sendCtx context.Context
}

// waitNetwork waits, 30 s at most, for the agent to bring eth0 up by
// itself (DHCP from QEMU's user network: 10.0.2.15/24; with restrict=on
// it gives no router, and the host's forwards at 10.0.2.100 are on the
// link), and says how long it waited; when it gives up it prints the
// agent's network status, and the script goes on (the fleet link and a
// resumed download retry until the network is there).
const waitNetwork = `t0=$(cut -d' ' -f1 /proc/uptime); end=$(( ${t0%.*} + 30 ))
until ip -4 addr show dev eth0 | grep -q 'inet 10.0.2.15/24'; do
  if [ $(cut -d. -f1 /proc/uptime) -ge $end ]; then echo "network: not up after 30 s"; paddock network; paddock network --json; break; fi; sleep 0.1; done
echo "network: waited from $t0 to $(cut -d' ' -f1 /proc/uptime) s of uptime"
`

// guestScript runs in every boot of the base-update test once the agent
// is ready: it waits for the agent to bring the network up (waitNetwork), prints each new checkpoint of a
// slot write once it is synced (a power cut after the line keeps it),
// prints the changes once none is in progress, and after 150 s (well inside the VM's 4 min console
// timeout) prints the agent's state and its goroutines (SIGQUIT) and
// powers off, so that a wait that fails has them in the console.
const guestScript = waitNetwork + `( for i in $(seq 150); do paddock changes --in-progress | grep -q 'No changes' && break; sleep 1; done; echo CHANGES; paddock changes --json; echo STATUS; paddock base status --json; echo REPORT-END ) &
last=""; end=$(( $(cut -d. -f1 /proc/uptime) + 150 ))
while [ $(cut -d. -f1 /proc/uptime) -lt $end ]; do
  c=$(cat /var/lib/paddock/boot/base-?.checkpoint 2>/dev/null)
  if [ -n "$c" ] && [ "$c" != "$last" ]; then sync; echo "CHECKPOINT $c"; last="$c"; fi
  sleep 0.05
done
echo "DIAGNOSTICS (150 s)"; paddock changes --json; paddock base status --json; ls -l /var/lib/paddock/boot
for p in $(pidof paddock); do [ "$p" != 1 ] && grep -q daemon /proc/$p/cmdline && kill -QUIT $p; done; sleep 2`

// checkpointRe matches the guest script's line for a checkpoint.
var checkpointRe = regexp.MustCompile(`^CHECKPOINT .*"verified":([0-9]+)`)

// nextCheckpoint waits for the guest to print a checkpoint of more than
// verified chunks, synced, and returns its chunks; false when v ends
// first.
func (f *fleetBase) nextCheckpoint(v *qemu.VM, verified int64) (int64, bool) {
	for {
		m, err := v.ExpectRegexp(f.ctx(v), checkpointRe)
		if err != nil {
			return 0, false
		}
		if n, _ := strconv.ParseInt(m[1], 10, 64); n > verified {
			return n, true
		}
	}
}

func newFleetBase(t *testing.T) *fleetBase {
	vmlinux, vmlinuz, modules := guestKernel(t)
	d := newDevice(t)
	d.setupKeys("hello")
	broker := mosquittotest.Start(t)
	d.setupOperator()
	testutil.WriteFile(t, filepath.Join(d.work, "agent.yaml"), "brokers: [tcp://10.0.2.100:1883]\ndevice-id: vm1\n")
	d.ok("image", "base", "--arch", "amd64", "--paddock", binary, "--trust", "root.asc", "--agent-config", "agent.yaml",
		"-o", "base.img", "--key", "root", "--revision", "1")
	d.ok("image", "initrd", "--modules", modules, "--paddock", binary, "--trust", "root.asc", "-o", "initrd.img", "--module", "virtio_net")
	d.ok("image", "build", "--gadget", filepath.Join(examples, "gadget-amd64"), "--base", "base.img",
		"--kernel", vmlinuz, "--initrd", "initrd.img", "--arch", "amd64", "-o", "disk.img", "-q")
	b := &baseDisk{d: d, vmlinux: vmlinux, img: filepath.Join(d.work, "disk.img"), consoleTimeout: 4 * time.Minute}
	b.bootenv = bootenvOffset(t, b.img)
	if err := os.Mkdir(filepath.Join(d.work, "artifacts"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startArtifactServer(t, filepath.Join(d.work, "artifacts"), false)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &fleetBase{b: b, broker: broker, http: srv, sendCtx: ctx,
		guest: []qemu.GuestForward{{GuestPort: 1883, HostPort: broker.Port()}, {GuestPort: 8080, HostPort: srv.port}}}
}

// vmDeadlines holds the context of each VM's waits: they end with the
// VM's console timeout, and earlier when the guest script gives up and
// powers off.
var vmDeadlines sync.Map // *qemu.VM -> context.Context

// boot starts the disk with the guest script and returns once the agent
// is ready.
func (f *fleetBase) boot(t *testing.T, what string) *qemu.VM {
	t.Helper()
	c, err := qemu.WithCommand(qemu.Config{Kernel: f.b.vmlinux, Initrd: filepath.Join(f.b.d.work, "initrd.img"),
		Disks: []string{f.b.img}, Append: "paddock.trace=1", Timeout: f.b.consoleTimeout, GuestForwards: f.guest}, guestScript)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.b.consoleTimeout)
	t.Cleanup(cancel)
	v, err := qemu.Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.PowerCut()
		v.Wait()
	})
	vmDeadlines.Store(v, ctx)
	if err := v.Expect(ctx, "paddock: cmd begin"); err != nil {
		f.fail(t, v, fmt.Sprintf("%s: %v", what, err))
	}
	return v
}

// ctx returns the context of v's waits.
func (f *fleetBase) ctx(v *qemu.VM) context.Context {
	c, _ := vmDeadlines.Load(v)
	return c.(context.Context)
}

// fail ends the test with what explains it: the boot environment and the
// console, which holds the agent's changes and base status when the guest
// script gave up.
func (f *fleetBase) fail(t *testing.T, v *qemu.VM, msg string) {
	t.Helper()
	v.PowerCut()
	v.Wait()
	e := f.b.env(t, nil)
	f.http.mu.Lock()
	reqs := fmt.Sprint(f.http.requests)
	f.http.mu.Unlock()
	t.Fatalf("%s\nthe boot environment: %+v\nthe artifact server's requests: %s\nconsole:\n%s", msg, *e, reqs, tail(v.Output(), 400))
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitOnline waits until the fleet sees the device online.
func (f *fleetBase) waitOnline(t *testing.T, v *qemu.VM) {
	t.Helper()
	var r result
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		r = f.b.d.paddock("fleet", "devices", "--broker", f.broker.URL(), "--json")
		if strings.Contains(r.stdout, `"online": true`) || strings.Contains(r.stdout, `"online":true`) {
			return
		}
	}
	f.fail(t, v, fmt.Sprintf("vm1 not online in 'fleet devices' within 90 s: %s%s", r.stdout, r.stderr))
}

type sendAnswer struct {
	out string
	err error
}

// send runs the operator's 'paddock fleet send ... base-update URL' for
// the artifact name, and returns its answer when it comes.
func (f *fleetBase) send(t *testing.T, name string) <-chan sendAnswer {
	t.Helper()
	ch := make(chan sendAnswer, 1)
	cmd := exec.CommandContext(f.sendCtx, binary, "fleet", "send", "--broker", f.broker.URL(), "--key", "ops", "--delegation", "ops.delegation",
		"--device", "vm1", "--timeout", "10m", "--json", "--assert", filepath.Join("artifacts", name+".img.assert"),
		"base-update", fmt.Sprintf("http://%s:8080/%s.img", qemu.GuestForwardAddr, name))
	cmd.Dir, cmd.Env = f.b.d.work, f.b.d.env()
	go func() {
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		ch <- sendAnswer{string(out), err}
	}()
	return ch
}

// waitMarked waits until the boot environment on the disk marks slot as
// being written, while v runs.
func (f *fleetBase) waitMarked(v *qemu.VM, slot string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && f.ctx(v).Err() == nil {
		if e, err := f.b.readEnv(); err == nil && e.Bad == slot && e.BadWhy == boot.WhyWriting {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// waitTry waits until v ends: the agent rebooted to try slot to. It
// reports whether the environment says so.
func (f *fleetBase) waitTry(t *testing.T, v *qemu.VM, from, to string) bool {
	t.Helper()
	done := make(chan struct{})
	go func() { v.Wait(); close(done) }()
	select {
	case <-done:
	case <-f.ctx(v).Done():
	}
	v.PowerCut()
	v.Wait()
	e := f.b.env(t, nil)
	return e.Slot == from && e.Try == to
}

// cut cuts the power of v and checks the environment: slot from known
// good, slot to booted only as a try. It reports whether the try is set.
func (f *fleetBase) cut(t *testing.T, v *qemu.VM, what, from, to string) bool {
	t.Helper()
	v.PowerCut()
	v.Wait()
	e := f.b.env(t, nil)
	next, _ := boot.Choose(e, "")
	t.Logf("%s: the environment has slot %s, try %q, bad %q (%s)", what, e.Slot, e.Try, e.Bad, e.BadWhy)
	if e.Slot != from || (next == to && e.Try != to) {
		t.Fatalf("%s: got the environment %+v booting slot %s next, want slot %s known good and slot %s booted only as a try\nconsole:\n%s",
			what, *e, next, from, to, tail(v.Output(), 100))
	}
	return e.Try == to
}

// report waits for the guest script's report of the changes and the base
// status.
func (f *fleetBase) report(t *testing.T, v *qemu.VM, name string) (apitypes.BaseStatus, []apitypes.ChangeInfo) {
	t.Helper()
	if err := v.Expect(f.ctx(v), "REPORT-END"); err != nil {
		f.fail(t, v, fmt.Sprintf("update %s: no report of the changes: %v", name, err))
	}
	// The last report; init and the agent write to the same console, so
	// their lines can come between a marker and its JSON (an e2e-full run
	// got init's "the try has ended" right after STATUS): decodeAfter
	// skips them.
	out := v.Output()
	i := strings.LastIndex(out, "\nCHANGES")
	if i < 0 {
		f.fail(t, v, fmt.Sprintf("update %s: no CHANGES in the report", name))
	}
	report := out[i:]
	var st apitypes.BaseStatus
	var chgs []apitypes.ChangeInfo
	if err := decodeAfter(report, "STATUS", &st); err != nil {
		f.fail(t, v, fmt.Sprintf("update %s: cannot read the status: %v", name, err))
	}
	if err := decodeAfter(report, "CHANGES", &chgs); err != nil {
		f.fail(t, v, fmt.Sprintf("update %s: cannot read the changes: %v", name, err))
	}
	return st, chgs
}

// totalCopiedRe reads how much the tries of a write copied in all.
var totalCopiedRe = regexp.MustCompile(`over every try: [0-9.]+ (?:B|KiB|MiB) downloaded, ([0-9.]+ (?:B|KiB|MiB)) copied`)

// lastMatch is re's last match in s, or nil.
func lastMatch(re *regexp.Regexp, s string) []string {
	all := re.FindAllStringSubmatch(s, -1)
	if len(all) == 0 {
		return nil
	}
	return all[len(all)-1]
}

// resumedRe reads how much a write resumed from its log.
var resumedRe = regexp.MustCompile(`([0-9.]+) (B|KiB|MiB) resumed from an earlier try`)

// checkCommitted checks the tried boot's report: slot to runs, verified,
// good with revision rev, the last try committed, and the change done; its
// write copied chunks from slot from, and its last run resumed at least
// the verified bytes of the checkpoint before the last cut.
func (f *fleetBase) checkCommitted(t *testing.T, name, to, from string, rev int, st apitypes.BaseStatus, chgs []apitypes.ChangeInfo, verified int64) {
	t.Helper()
	if st.Running != to || !st.Verified {
		t.Errorf("update %s: got status %+v, want slot %s running, verified", name, st, to)
	}
	for _, sl := range st.Slots {
		if sl.Name == to && (sl.State != boot.StateGood || sl.Revision != rev) {
			t.Errorf("update %s: got slot %+v, want good with revision %d", name, sl, rev)
		}
	}
	if st.Last.Slot != to || st.Last.Result != boot.ResultCommitted {
		t.Errorf("update %s: got the last try %+v, want %s committed", name, st.Last, to)
	}
	var found bool
	for _, c := range chgs {
		if c.Kind != "base-update" || !strings.Contains(c.Summary, fmt.Sprintf("revision %d", rev)) {
			continue
		}
		found = true
		if c.Status != "Done" {
			t.Errorf("update %s: got the change %s %s (%s), want Done", name, c.ID, c.Status, c.Err)
		}
		for _, task := range c.Tasks {
			if task.Kind != "write-base" {
				continue
			}
			log := strings.Join(task.Log, "\n")
			t.Logf("update %s: write-base: %s", name, log)
			// Most chunks are the running slot's: copied, not downloaded,
			// by this write or by a try before the last cut. The total over
			// every try counts them wherever they were (a fresh-root run
			// resumed all 17 MiB and copied none itself; another found
			// them on the slot, written by a try cut before its checkpoint).
			total := lastMatch(totalCopiedRe, log)
			if !strings.Contains(log, "copied from slot "+from) || total == nil || total[1] == "0 B" {
				t.Errorf("update %s: got the write's log %q, want chunks copied from slot %s", name, log, from)
			}
			// The last run's: a write can run to its end and be cut before
			// the change records it, so that the next boot's write runs
			// again (over the whole image, found on the slot).
			m := lastMatch(resumedRe, log)
			if m == nil {
				t.Errorf("update %s: the write's log %q does not say what it resumed", name, log)
				continue
			}
			n, _ := strconv.ParseFloat(m[1], 64)
			got := int64(n * map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20}[m[2]])
			// The log gives MiB to one decimal: 0.05 MiB of rounding.
			if got < verified-(1<<20)/20 || verified > 0 && got == 0 {
				t.Errorf("update %s: the write resumed %d bytes, want at least the %d of the checkpoint before the last cut", name, got, verified)
			}
		}
	}
	if !found {
		t.Errorf("update %s: no base-update change to revision %d: %+v", name, rev, chgs)
	}
}

// readEnv reads the boot environment on the disk, for a poll while the
// guest runs.
func (b *baseDisk) readEnv() (*boot.Env, error) {
	f, err := os.Open(b.img)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	if _, err := f.ReadAt(buf, b.bootenv); err != nil && err != io.EOF {
		return nil, err
	}
	p := filepath.Join(b.d.work, "bootenv.poll")
	if err := os.WriteFile(p, buf, 0o600); err != nil {
		return nil, err
	}
	e, _ := boot.Load(p)
	return e, nil
}
