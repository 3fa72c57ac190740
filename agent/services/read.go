package services

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"paddock.dev/paddock/agent/api/apitypes"
)

// MaxLogLines bounds what one read of the logs returns.
const MaxLogLines = 10000

// Logs returns the last n lines (n <= 0: all, up to MaxLogLines) of the
// logs of the services that target (APP or APP.SVC) names, oldest first.
func (m *Manager) Logs(target string, n int) ([]apitypes.LogLine, error) {
	keys, err := m.logTargets(target)
	if err != nil {
		return nil, err
	}
	if n <= 0 || n > MaxLogLines {
		n = MaxLogLines
	}
	var out []apitypes.LogLine
	for _, k := range keys {
		app, svc, _ := strings.Cut(k, ".")
		lines, err := readLines(LogPath(app, svc), m.LogLimits.Files, n)
		if err != nil {
			return nil, fmt.Errorf("cannot read the log of %s: %w", k, err)
		}
		for _, l := range lines {
			out = append(out, parseLine(k, l))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}

// Follow calls emit with each line added to the logs of target's
// services from now on, until ctx is done or emit fails.
func (m *Manager) Follow(ctx context.Context, target string, emit func(apitypes.LogLine) error) error {
	keys, err := m.logTargets(target)
	if err != nil {
		return err
	}
	tails := make([]*tail, len(keys))
	for i, k := range keys {
		app, svc, _ := strings.Cut(k, ".")
		tails[i] = newTail(k, LogPath(app, svc))
	}
	for {
		// Wake on the next line of any of them, and look now and then for
		// a service started since (a new revision's).
		changed := make(chan struct{}, 1)
		for _, k := range keys {
			if l := m.logOf(k); l != nil {
				ch := l.changed()
				go func() {
					select {
					case <-ch:
						select {
						case changed <- struct{}{}:
						default:
						}
					case <-ctx.Done():
					}
				}()
			}
		}
		for _, t := range tails {
			for _, line := range t.read() {
				if err := emit(parseLine(t.key, line)); err != nil {
					return err
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-time.After(5 * time.Second):
		}
	}
}

// logTargets returns the services whose logs target names: those the
// manager knows, or those with a log folder.
func (m *Manager) logTargets(target string) ([]string, error) {
	app, svc, err := splitTarget(target)
	if err != nil {
		return nil, err
	}
	var keys []string
	entries, _ := os.ReadDir(fmt.Sprintf("%s/%s", LogsDir(), app))
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if ok && (svc == "" || name == svc) {
			keys = append(keys, app+"."+name)
		}
	}
	if len(keys) == 0 {
		if _, err := m.targets(app, svc); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func (m *Manager) logOf(key string) *serviceLog {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.svcs[key]; s != nil {
		return s.log
	}
	return nil
}

// parseLine splits a log line into its time and text.
func parseLine(key, line string) apitypes.LogLine {
	ts, text, _ := strings.Cut(line, " ")
	t, err := time.Parse(timeFormat, ts)
	if err != nil {
		return apitypes.LogLine{Service: key, Text: line}
	}
	return apitypes.LogLine{Time: t, Service: key, Text: text}
}

// tail reads what is added to a log file, across its rotations.
type tail struct {
	key, path string
	ino       uint64
	off       int64
	rest      string
}

// newTail starts at the end of the log at path.
func newTail(key, path string) *tail {
	t := &tail{key: key, path: path}
	if fi, err := os.Stat(path); err == nil {
		t.ino, t.off = fi.Sys().(*syscall.Stat_t).Ino, fi.Size()
	}
	return t
}

// read returns the whole lines added since the last read.
func (t *tail) read() []string {
	fi, err := os.Stat(t.path)
	if err != nil {
		return nil
	}
	var data string
	if ino := fi.Sys().(*syscall.Stat_t).Ino; ino != t.ino {
		// Rotated: the rest of the old file is now .1.
		if t.ino != 0 {
			data = readFrom(t.path+".1", t.off)
		}
		t.ino, t.off = ino, 0
	}
	more := readFrom(t.path, t.off)
	t.off += int64(len(more))
	data = t.rest + data + more
	i := strings.LastIndexByte(data, '\n')
	if i < 0 {
		t.rest = data
		return nil
	}
	t.rest = data[i+1:]
	return strings.Split(data[:i], "\n")
}

func readFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, 4<<20))
	return string(b)
}
