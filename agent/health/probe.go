package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/ota/manifest"
)

// probeSpec is one probe an app declares: the health check of one of its
// commands, or its check-health hook.
type probeSpec struct {
	Command string // the command whose sandbox the probe checks
	Hook    bool   // the check-health hook instead
	Check   manifest.Health
}

// key tells the probe's word apart from the app's other probes'.
func (s probeSpec) key() string {
	if s.Hook {
		return HookName
	}
	return s.Command
}

func (s probeSpec) source() Source {
	if s.Hook {
		return SourceHook
	}
	return SourceProbe
}

// probeRunner runs one probe once; an error says why it failed.
type probeRunner interface {
	run(ctx context.Context, app string, rev int, s probeSpec) error
}

// probe runs a probeSpec of one start of an app at its interval, until
// stopped.
type probe struct {
	m        *Manager
	app      string
	rev, gen int
	spec     probeSpec
	ctx      context.Context
	stop     context.CancelFunc
	// fails counts the failures in a row.
	fails int
}

func newProbe(m *Manager, app string, rev, gen int, spec probeSpec) *probe {
	ctx, cancel := context.WithCancel(context.Background())
	return &probe{m: m, app: app, rev: rev, gen: gen, spec: spec, ctx: ctx, stop: cancel}
}

// stopProbes stops the app's probes; the manager's lock is held.
func (ah *appHealth) stopProbes() {
	for _, p := range ah.probes {
		p.stop()
	}
	ah.probes = nil
}

// run probes at once, then every interval: one timer, no busy loop.
func (p *probe) run() {
	p.m.mu.Lock()
	p.m.setLocked(p.app, p.gen, p.spec.source(), p.spec.key(), Waiting, "not probed yet")
	runner := p.m.runner
	p.m.mu.Unlock()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(p.ctx, p.spec.Check.Timeout)
		err := runner.run(ctx, p.app, p.rev, p.spec)
		if err != nil && ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("no answer within %v", p.spec.Check.Timeout)
		}
		cancel()
		if p.ctx.Err() != nil {
			return
		}
		p.judge(err)
		t.Reset(max(p.spec.Check.Interval-time.Since(start), 0))
	}
}

// judge records a probe's outcome: okay at the first success, error only
// after Retries failures in a row (until then the last status stands, or
// waiting when there is none).
func (p *probe) judge(err error) {
	p.m.mu.Lock()
	defer p.m.mu.Unlock()
	src, key := p.spec.source(), p.spec.key()
	what := p.spec.Check.Kind() + " probe of " + p.spec.Command
	if p.spec.Hook {
		what = "check-health hook"
	}
	if err == nil {
		p.fails = 0
		p.m.setLocked(p.app, p.gen, src, key, Okay, what+" passed")
		return
	}
	p.fails++
	retries := max(p.spec.Check.Retries, 1)
	msg := fmt.Sprintf("%s failed (%d of %d): %v", what, min(p.fails, retries), retries, err)
	status := Error
	if p.fails < retries {
		status = Waiting
		if ah := p.m.of[p.app]; ah != nil {
			if r, ok := ah.records[string(src)+" "+key]; ok && r.Status == Okay {
				status = Okay // one failure does not make an app unhealthy
				msg = r.Message
			}
		}
	}
	p.m.setLocked(p.app, p.gen, src, key, status, msg)
}

// realRunner runs probes for real: commands and hooks through the same
// confined launch as 'paddock run', connections on the sandbox's loopback.
type realRunner struct{}

func (realRunner) run(ctx context.Context, app string, rev int, s probeSpec) error {
	switch {
	case s.Hook:
		_, err := launch.RunChild(ctx, maxOutput, app+"."+manifest.HookCommand(HookName))
		return err
	case s.Check.Command != "":
		_, err := launch.RunChild(ctx, maxOutput, "--probe", app+"."+s.Command)
		return err
	case s.Check.TCP != 0:
		c, err := dialApp(ctx, app, s.Command, rev, s.Check.TCP)
		if err != nil {
			return err
		}
		return c.Close()
	default:
		return httpProbe(ctx, app, s.Command, rev, s.Check)
	}
}

// sandboxPID finds the init of a command's kept sandbox; tests swap it.
var sandboxPID = launch.SandboxPID

// dialApp connects to port on the loopback of the sandbox of app's command.
func dialApp(ctx context.Context, app, cmd string, rev, port int) (net.Conn, error) {
	pid, err := sandboxPID(app, cmd, rev)
	if err != nil {
		return nil, err
	}
	c, err := launch.DialLoopback(ctx, pid, port)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to port %d: %w", port, errors.Unwrap(err))
	}
	return c, nil
}

// maxBody is how much of an HTTP probe's answer is read.
const maxBody = 4 << 10

func httpProbe(ctx context.Context, app, cmd string, rev int, h manifest.Health) error {
	port, path := h.HTTPTarget()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialApp(ctx, app, cmd, rev, port)
		},
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 16 << 10,
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "paddock-health")
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap()
		}
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("GET %s answered %s", path, resp.Status)
	}
	return nil
}

// maxOutput is how much of a probe's or hook's output is kept for its message.
const maxOutput = 512

// oneLine makes s one printable line of at most n bytes.
func oneLine(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == '\u2028' || r == '\u2029' {
			r = ' '
		}
		b.WriteRune(r)
	}
	s = strings.TrimSpace(b.String())
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && (s[cut]&0xc0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
