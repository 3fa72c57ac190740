package boot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/dirs"
)

// watchdog is an armed /dev/watchdog.
type watchdog struct {
	fd      int
	name    string // the driver's identity: "i6300ESB timer", "Software Watchdog"
	timeout time.Duration
}

// openWatchdog arms the machine's watchdog with timeout (the default when
// zero), loading softdog when the machine has none. Its descriptor is not
// closed on exec: stage 2 inherits it.
func openWatchdog(con *console, timeout time.Duration) (*watchdog, error) {
	if timeout == 0 {
		timeout = defaultWatchdogTimeout
	}
	name, ident := findWatchdog()
	if name == "" {
		if err := probe(con, []string{"softdog"}); err != nil {
			return nil, err
		}
		for deadline := time.Now().Add(time.Second); name == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			name, ident = findWatchdog()
		}
		if name == "" {
			return nil, errors.New("no watchdog device (i6300esb, softdog)")
		}
	}
	p := filepath.Join(devDir, name)
	fd, err := unix.Open(p, unix.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open %s: %w", p, err)
	}
	secs := int(timeout / time.Second)
	if err := unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, secs); err != nil {
		con.logf("watchdog: cannot set a timeout of %ds: %v", secs, err)
	}
	w := &watchdog{fd: fd, timeout: timeout, name: name + " (" + ident + ")"}
	if err := w.pet(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return w, nil
}

// findWatchdog returns the watchdog device to use ("watchdog1") and its
// identity: a hardware one first (softdog, a kernel timer, cannot reset a
// machine whose kernel is stuck), or "" when there is none. The drivers
// register as virtual devices (the i6300esb as well as softdog), so they
// are told apart by their identity ("i6300ESB timer", "Software
// Watchdog").
func findWatchdog() (name, identity string) {
	classDir := filepath.Join(sysDir, "class/watchdog")
	ents, _ := os.ReadDir(classDir)
	for _, ent := range ents {
		if _, err := os.Stat(filepath.Join(devDir, ent.Name())); err != nil {
			continue
		}
		id := "unknown"
		if b, err := os.ReadFile(filepath.Join(classDir, ent.Name(), "identity")); err == nil {
			id = strings.TrimSpace(string(b))
		}
		if name == "" || identity == softdogIdentity && id != softdogIdentity {
			name, identity = ent.Name(), id
		}
	}
	return name, identity
}

// softdogIdentity is the identity of the softdog driver.
const softdogIdentity = "Software Watchdog"

// inheritedWatchdog returns the watchdog stage 1 armed, or nil.
func inheritedWatchdog() *watchdog {
	fd, err := strconv.Atoi(os.Getenv(watchdogEnv))
	if err != nil || fd < 3 {
		return nil
	}
	os.Unsetenv(watchdogEnv)
	unix.CloseOnExec(fd) // not for the agent
	return &watchdog{fd: fd, name: "watchdog"}
}

func (w *watchdog) pet() error {
	if err := unix.IoctlSetInt(w.fd, unix.WDIOC_KEEPALIVE, 0); err != nil {
		return fmt.Errorf("watchdog keepalive: %w", err)
	}
	return nil
}

// disarm stops the watchdog: the magic close ('V', then close).
func (w *watchdog) disarm() {
	unix.Write(w.fd, []byte("V"))
	unix.Close(w.fd)
}

// probeAgent asks the agent's API for any answer (a 404 is one).
func probeAgent(ctx context.Context) error {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", dirs.SocketPath)
		},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://paddock/v1/changes", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// startTryMonitor watches a tried boot in stage 2 (see tryMonitor), with
// the watchdog stage 1 armed, until ctx ends.
func startTryMonitor(ctx context.Context, con *console, cl cmdline, ready <-chan struct{}) {
	w := inheritedWatchdog()
	rec, err := Running()
	if err != nil || !rec.Tried {
		if w != nil {
			w.disarm()
		}
		return
	}
	m := &tryMonitor{
		con: con, slot: rec.Slot, ready: ready, probe: probeAgent,
		pet:    func() error { return nil },
		disarm: func() {},
		committed: func() (bool, error) {
			e, err := Read(rec.Bootenv)
			if err != nil {
				return false, err
			}
			return e.Trying != rec.Slot, nil
		},
		note: func(why string) {
			if err := setNote(rec.Bootenv, rec.Slot, why); err != nil {
				con.logf("tried boot: cannot note why: %v", err)
			}
		},
		reboot:    func() { unix.Kill(1, unix.SIGINT) },
		tryWait:   cmp(cl.TryWait, defaultTryWait),
		hangAfter: agentHangAfter,
		interval:  min(5*time.Second, cmp(cl.Watchdog, defaultWatchdogTimeout)/3),
		now:       time.Now,
	}
	if w != nil {
		m.pet, m.disarm = w.pet, w.disarm
	} else {
		con.logf("tried base slot %s runs without a watchdog: a hang will not fall back by itself", rec.Slot)
	}
	con.logf("tried base slot %s: waiting for its agent to commit", rec.Slot)
	go m.run(ctx)
}

// cmp returns d, or def when d is zero.
func cmp(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
