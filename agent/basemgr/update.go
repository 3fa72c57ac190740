package basemgr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"paddock.dev/paddock/agent/manager"
	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/boot"
	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/ota/assert"
	"paddock.dev/paddock/ota/baseupdate"
	"paddock.dev/paddock/ota/fetch"
)

// UpdateOptions say what base to update to and when to reboot.
type UpdateOptions struct {
	// Assertions is the base-revision bundle ('paddock image base --key').
	Assertions []byte
	// File is the slot image on the device, or URLs its mirrors.
	File string
	URLs []string
	// Limits bound the download; zero fields take the device's.
	Limits *fetch.Limits
	// Reboot is "now" (the default), "never" (the device's next reboot
	// tries the base) or a daily window "HH:MM-HH:MM" in UTC.
	Reboot string
	// Command is the fleet command that asked for the update, or "".
	Command string
}

// updateData is what the change records of the update.
type updateData struct {
	Slot       string   `json:"slot"`        // the slot written
	Device     string   `json:"device"`      // its device
	Running    string   `json:"running"`     // the running slot
	RunningDev string   `json:"running-dev"` // its device
	Bootenv    string   `json:"bootenv"`
	Assertions string   `json:"assertions"`
	File       string   `json:"file,omitempty"`
	URLs       []string `json:"urls,omitempty"`
	Limits     fetch.Limits
	Reboot     string `json:"reboot"`
	Name       string `json:"name"`
	Version    string `json:"version"`
	Revision   int    `json:"revision"`
	// BootID is the boot that set the try, recorded by set-try.
	BootID string `json:"boot-id,omitempty"`
}

const dataKey = "base-update"

// Update checks the base-revision and starts the change that writes the
// base into the inactive slot, tries it after a reboot and commits it. It
// refuses at once a base that does not check, and an update while a
// tried base has not committed (boot.ErrTryInProgress).
func (m *Manager) Update(opts UpdateOptions) (string, error) {
	if (opts.File == "") == (len(opts.URLs) == 0) {
		return "", errors.New("internal error: a base update needs a file or URLs")
	}
	if err := checkReboot(opts.Reboot); err != nil {
		return "", refusedError{err}
	}
	rec, err := bootRecord()
	if err != nil {
		return "", err
	}
	if rec.Tried {
		if env, err := boot.Read(rec.Bootenv); err == nil && env.Trying != "" {
			return "", fmt.Errorf("cannot update the base: %w (slot %s): wait for it to commit or fall back (see 'paddock base status')", boot.ErrTryInProgress, env.Trying)
		}
	}
	b, err := m.checkBundle(opts.Assertions, rec)
	if err != nil {
		return "", err
	}
	target := other(rec.Slot)
	d := updateData{Slot: target, Device: rec.Partitions["base-"+target], Running: rec.Slot,
		RunningDev: rec.Partitions["base-"+rec.Slot], Bootenv: rec.Bootenv, Assertions: string(opts.Assertions),
		File: opts.File, URLs: opts.URLs, Limits: m.Download, Reboot: opts.Reboot,
		Name: b.Name, Version: b.Version, Revision: b.Revision}
	if opts.Limits != nil {
		d.Limits = *opts.Limits
	}
	if d.Reboot == "" {
		d.Reboot = "now"
	}
	release, err := m.conflicts.Reserve("a base update", updateKey)
	if err != nil {
		return "", fmt.Errorf("cannot update the base: %w", err)
	}
	defer release()
	m.st.Lock()
	defer m.st.Unlock()
	chg := m.st.NewChange(ChangeKind, fmt.Sprintf("Update the base to %s in slot %s", b, target))
	chg.Set(dataKey, d)
	if opts.Command != "" {
		chg.Set(CommandKey, opts.Command)
	}
	manager.Touch(chg, updateKey, manager.BaseKey(target))
	var prev *state.Task
	for _, t := range []struct{ kind, summary string }{
		{"check-base", fmt.Sprintf("Check %s", b)},
		{"write-base", fmt.Sprintf("Write %s into slot %s", b, target)},
		{"verify-base", fmt.Sprintf("Read slot %s back and verify it", target)},
		{"set-try", fmt.Sprintf("Make the next boot try slot %s", target)},
		{"reboot", "Reboot to try the new base"},
		{"commit-base", fmt.Sprintf("Commit slot %s once healthy", target)},
	} {
		task := m.st.NewTask(t.kind, t.summary)
		if prev != nil {
			task.WaitFor(prev)
		}
		chg.AddTask(task)
		prev = task
	}
	m.wake()
	return chg.ID(), nil
}

// checkReboot checks a reboot option.
func checkReboot(r string) error {
	if r == "" || r == "now" || r == "never" {
		return nil
	}
	if _, _, ok := parseWindow(r); !ok {
		return fmt.Errorf("reboot %q: want now, never or a daily UTC window such as 02:00-04:00", r)
	}
	return nil
}

// parseWindow parses "HH:MM-HH:MM" into minutes of the day.
func parseWindow(w string) (from, to int, ok bool) {
	a, b, found := strings.Cut(w, "-")
	parse := func(s string) (int, bool) {
		h, mi, found := strings.Cut(s, ":")
		hh, err1 := strconv.Atoi(h)
		mm, err2 := strconv.Atoi(mi)
		if !found || err1 != nil || err2 != nil || len(h) != 2 || len(mi) != 2 || hh > 23 || mm > 59 || hh < 0 || mm < 0 {
			return 0, false
		}
		return hh*60 + mm, true
	}
	from, ok1 := parse(a)
	to, ok2 := parse(b)
	return from, to, found && ok1 && ok2 && from != to
}

// inWindow reports whether t (UTC) is in the daily window w, and how long
// until it opens when it is not.
func inWindow(w string, t time.Time) (bool, time.Duration) {
	if w == "now" {
		return true, 0
	}
	from, to, ok := parseWindow(w)
	if !ok {
		return false, time.Hour
	}
	t = t.UTC()
	now := t.Hour()*60 + t.Minute()
	in := from < to && now >= from && now < to || from > to && (now >= from || now < to)
	if in {
		return true, 0
	}
	wait := (from - now + 24*60) % (24 * 60)
	return false, time.Duration(wait) * time.Minute
}

// data reads the update's record of the task's change.
func (m *Manager) data(t *state.Task) (updateData, error) {
	m.st.Lock()
	defer m.st.Unlock()
	var d updateData
	if err := t.Change().Get(dataKey, &d); err != nil {
		return d, fmt.Errorf("internal error: base update without its data: %w", err)
	}
	return d, nil
}

// update returns the writer of the update d.
func (m *Manager) update(d updateData, t *state.Task) (*baseupdate.Update, error) {
	as, err := assert.DecodeBundle([]byte(d.Assertions))
	if err != nil {
		return nil, err
	}
	var rev *assert.BaseRevision
	for _, a := range as {
		if a.Type() == assert.BaseRevisionType {
			if rev, err = assert.ParseBaseRevision(a); err != nil {
				return nil, err
			}
		}
	}
	if rev == nil {
		return nil, errors.New("internal error: base update without a base-revision")
	}
	u := &baseupdate.Update{Base: rev, Slot: d.Device, Running: d.RunningDev, Checkpoint: checkpointPath(d.Slot), Retries: 2}
	if r := runningBase(d.Running); r != nil {
		u.RunningChunks, u.RunningChunkSize = r.Chunks, r.ChunkSize
	}
	if d.File != "" {
		u.Source = baseupdate.FileSource{Path: d.File}
	} else {
		u.Source = baseupdate.URLSource{URLs: d.URLs, Size: rev.Size, Options: fetch.Options{Retries: 3, Limits: d.Limits}}
	}
	return u, nil
}

func (m *Manager) doCheck(t *state.Task) error {
	d, err := m.data(t)
	if err != nil {
		return err
	}
	rec, err := bootRecord()
	if err != nil {
		return err
	}
	if rec.Slot != d.Running {
		return fmt.Errorf("cannot update the base: the device now runs slot %s, not %s (start the update again)", rec.Slot, d.Running)
	}
	_, err = m.checkBundle([]byte(d.Assertions), rec)
	return err
}

func (m *Manager) doWrite(t *state.Task) error {
	d, err := m.data(t)
	if err != nil {
		return err
	}
	if err := boot.MarkWriting(d.Bootenv, d.Slot); err != nil {
		return fmt.Errorf("cannot update the base: %w", err)
	}
	if err := os.MkdirAll(assertionDir(), 0o755); err != nil {
		return err
	}
	u, err := m.update(d, t)
	if err != nil {
		return err
	}
	ctx := m.runner.Stopping()
	if deadline := d.Limits.DeadlineFor(u.Base.Size, 0); deadline > 0 && d.File == "" {
		var cancel func()
		ctx, cancel = context.WithTimeout(ctx, deadline)
		defer cancel()
	}
	start := m.now()
	res, err := u.Write(ctx)
	if res != nil {
		m.st.Lock()
		found := ""
		if res.Found > 0 {
			found = fmt.Sprintf(" (%s found on the slot beyond the checkpoint)", size(res.Found))
		}
		t.Logf("%s from %s, %s copied from slot %s, %s resumed from an earlier try%s, in %v; over every try: %s downloaded, %s copied",
			size(res.Downloaded), u.Source, size(res.Copied), d.Running, size(res.Resumed), found, m.now().Sub(start).Round(time.Millisecond),
			size(res.TotalDownloaded), size(res.TotalCopied))
		t.Set("result", res)
		m.st.Unlock()
	}
	if err != nil && m.runner.Stopping().Err() != nil {
		return state.Retry{After: time.Second, Reason: "the agent is stopping: the write resumes at its next start"}
	}
	if err != nil && d.File == "" && downloadFailed(err) {
		// The network may come up after the agent (a reboot in the middle
		// of the update): the write resumes from its checkpoint a little
		// later, a few times, before the update fails.
		m.st.Lock()
		var n int
		t.Get("download-retries", &n)
		n++
		t.Set("download-retries", n)
		m.st.Unlock()
		if n <= downloadRetries {
			return state.Retry{After: m.downloadRetry, Reason: fmt.Sprintf("%v (try %d of %d)", err, n, downloadRetries)}
		}
	}
	return err
}

// downloadRetries is how many times a write whose download failed runs
// again, m.downloadRetry apart, before the update fails.
const downloadRetries = 6

// downloadFailed reports whether err is the source's failure to deliver
// (the mirrors unreachable or cut), not a corrupt image, a slot that
// reads back wrong or is in use, or the download's deadline.
func downloadFailed(err error) bool {
	for _, e := range []error{baseupdate.ErrBadChunk, baseupdate.ErrReadBack, baseupdate.ErrInUse, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, e) {
			return false
		}
	}
	return true
}

func (m *Manager) doVerify(t *state.Task) error {
	d, err := m.data(t)
	if err != nil {
		return err
	}
	u, err := m.update(d, t)
	if err != nil {
		return err
	}
	if err := u.Verify(); err != nil {
		return err
	}
	// Init checks the slot's base against this before it boots it.
	if err := os.MkdirAll(assertionDir(), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(assertionPath(d.Slot), []byte(d.Assertions), 0o644)
}

func (m *Manager) doSetTry(t *state.Task) error {
	d, err := m.data(t)
	if err != nil {
		return err
	}
	// The boot that sets the try is the one to reboot from: recorded
	// before the try is set, so that a power cut or a reboot by hand
	// right after it still counts as the reboot.
	if d.BootID == "" {
		d.BootID = m.bootID()
		m.st.Lock()
		t.Change().Set(dataKey, d)
		m.st.Unlock()
	}
	// A power cut after the environment was written and before the task
	// was recorded done runs it again, maybe in the tried boot itself:
	// the try it set is in place.
	if env, err := boot.Read(d.Bootenv); err == nil && (env.Try == d.Slot || env.Trying == d.Slot) {
		return baseupdate.RemoveCheckpoint(checkpointPath(d.Slot))
	}
	if err := boot.SetTry(d.Bootenv, d.Slot, max(m.Attempts, 1)); err != nil {
		return fmt.Errorf("cannot update the base: %w", err)
	}
	return baseupdate.RemoveCheckpoint(checkpointPath(d.Slot))
}

// doReboot records the boot that wrote the slot and reboots (now, or in
// the window); it is done once the device runs another boot.
func (m *Manager) doReboot(t *state.Task) error {
	d, err := m.data(t)
	if err != nil {
		return err
	}
	if m.bootID() != d.BootID {
		return nil // rebooted
	}
	if d.Reboot == "never" {
		return state.Retry{After: m.poll, Reason: "the next reboot tries the new base (reboot the device)"}
	}
	in, wait := inWindow(d.Reboot, m.now())
	switch {
	case !in:
		return state.Retry{After: min(wait, 10*time.Minute), Reason: "waiting for the reboot window " + d.Reboot}
	case m.Reboot == nil:
		return state.Retry{After: m.poll, Reason: "the agent cannot reboot this machine: reboot it to try the new base"}
	case !m.rebooting:
		m.rebooting = true
		m.st.Lock()
		t.Logf("rebooting to try slot %s", d.Slot)
		m.st.Unlock()
		// Reboot once the state is saved and answers are out.
		time.AfterFunc(2*time.Second, func() {
			if err := m.Reboot(); err != nil {
				m.log.Error("base update: cannot reboot", "err", err)
			}
		})
	}
	return state.Retry{After: m.poll, Reason: "rebooting"}
}

// doCommit runs in the boot after the reboot: it commits the tried slot
// once the device is healthy, marks it bad and reboots when it is not
// within the window, and fails the change with "rolled back: REASON" when
// the device runs the old slot.
func (m *Manager) doCommit(t *state.Task) error {
	d, err := m.data(t)
	if err != nil {
		return err
	}
	rec, err := boot.Running()
	if err != nil {
		return err
	}
	env, err := boot.Read(d.Bootenv)
	if err != nil {
		return err
	}
	if rec.Slot != d.Slot {
		reason := "the tried base did not boot"
		if env.Last.Slot == d.Slot && env.Last.Result == boot.ResultFailed && env.Last.Reason != "" {
			reason = env.Last.Reason
		} else if env.Bad == d.Slot && env.BadWhy != "" {
			reason = env.BadWhy
		}
		return fmt.Errorf("rolled back: %s", reason)
	}
	if env.Slot == d.Slot && env.Trying == "" {
		return nil // committed (a crash after the commit)
	}
	var since time.Time
	m.st.Lock()
	if t.Get("healthy-wait-since", &since) != nil {
		since = m.now()
		t.Set("healthy-wait-since", since)
	}
	m.st.Unlock()
	ok, why := true, ""
	if m.Gate != nil {
		ok, why = m.Gate()
	}
	if ok {
		if err := boot.Commit(d.Bootenv, d.Slot); err != nil {
			return err
		}
		m.st.Lock()
		t.Logf("slot %s is healthy: committed; slot %s is the fallback", d.Slot, d.Running)
		m.st.Unlock()
		return nil
	}
	if m.now().Sub(since) < m.HealthWindow {
		return state.Retry{After: min(m.poll, 2*time.Second), Reason: "waiting for the device to be healthy: " + why}
	}
	if !m.rebooting {
		reason := fmt.Sprintf("unhealthy for %v after the boot: %s", m.HealthWindow, why)
		if err := boot.MarkBad(d.Bootenv, d.Slot, reason); err != nil {
			return err
		}
		m.st.Lock()
		t.Logf("slot %s is %s: marked bad, rebooting to slot %s", d.Slot, reason, d.Running)
		m.st.Unlock()
		if m.Reboot == nil {
			return state.Retry{After: m.poll, Reason: "the agent cannot reboot this machine: reboot it to go back to the old base"}
		}
		m.rebooting = true
		time.AfterFunc(2*time.Second, func() {
			if err := m.Reboot(); err != nil {
				m.log.Error("base update: cannot reboot", "err", err)
			}
		})
	}
	return state.Retry{After: m.poll, Reason: "rebooting to the old base"}
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
