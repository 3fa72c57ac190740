package services

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"paddock.dev/paddock/internal/dirs"
)

// LogLimits bound the log of each service.
type LogLimits struct {
	// MaxSize is the size at which the log file is rotated; Files is how
	// many files are kept (the log and its rotated copies).
	MaxSize int64
	Files   int
	// Rate is how many bytes a second the log takes on average, Burst how
	// many at once; lines beyond are dropped and counted.
	Rate, Burst int
	// MaxLine cuts longer lines.
	MaxLine int
}

// DefaultLogLimits keep 2 files of 1 MiB per service.
var DefaultLogLimits = LogLimits{MaxSize: 1 << 20, Files: 2, Rate: 64 << 10, Burst: 256 << 10, MaxLine: 4096}

// LogsDir is where the services' logs are, one folder per app.
func LogsDir() string { return filepath.Join(dirs.LibDir, "logs") }

// LogPath is the log of service svc of app.
func LogPath(app, svc string) string { return filepath.Join(LogsDir(), app, svc+".log") }

// timeFormat starts each line of a log.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// serviceLog copies the lines of a service's pipe to its log file.
type serviceLog struct {
	lim  LogLimits
	path string
	pipe *os.File

	mu   sync.Mutex
	f    *os.File
	size int64
	// tokens is the rate budget in bytes, refilled at lim.Rate.
	tokens  float64
	last    time.Time
	dropped int
	// grew is closed and replaced each time the log grows (for followers).
	grew chan struct{}
	done chan struct{}
}

// openServiceLog opens the log of app's service svc and starts copying its
// pipe to it.
func openServiceLog(app, svc string, lim LogLimits) (*serviceLog, error) {
	dir := filepath.Join(LogsDir(), app)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create the log folder of %s: %w", app, err)
	}
	os.Chmod(filepath.Dir(dir), 0o700)
	pipe, err := openPipe(fifoPath(app+"."+svc), false)
	if err != nil {
		return nil, err
	}
	l := &serviceLog{lim: lim, path: LogPath(app, svc), pipe: pipe, tokens: float64(lim.Burst), last: timeNow(),
		grew: make(chan struct{}), done: make(chan struct{})}
	if err := l.open(); err != nil {
		pipe.Close()
		return nil, err
	}
	go l.copy()
	return l, nil
}

func (l *serviceLog) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open the log %s: %w", l.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// copy reads lines from the pipe until it is closed.
func (l *serviceLog) copy() {
	defer close(l.done)
	br := bufio.NewReaderSize(l.pipe, l.lim.MaxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			l.add(bytes.TrimRight(line, "\n"))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// add writes one line with its time, unless the rate budget is spent.
func (l *serviceLog) add(text []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := timeNow()
	l.tokens = min(float64(l.lim.Burst), l.tokens+now.Sub(l.last).Seconds()*float64(l.lim.Rate))
	l.last = now
	n := float64(len(text) + len(timeFormat) + 2)
	if l.tokens < n {
		l.dropped++
		return
	}
	l.tokens -= n
	if l.dropped > 0 {
		l.write(now, fmt.Appendf(nil, "paddock: %d lines dropped: the service wrote more than its log takes (%d KiB/s)", l.dropped, l.lim.Rate>>10))
		l.dropped = 0
	}
	l.write(now, text)
	close(l.grew)
	l.grew = make(chan struct{})
}

func (l *serviceLog) write(now time.Time, text []byte) {
	b := make([]byte, 0, len(text)+40)
	b = now.UTC().AppendFormat(b, timeFormat)
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, '\n')
	if l.f != nil && l.size+int64(len(b)) > l.lim.MaxSize && l.size > 0 {
		l.rotate()
	}
	if l.f == nil {
		return
	}
	n, _ := l.f.Write(b)
	l.size += int64(n)
}

// rotate moves SVC.log to SVC.log.1 (and so on, up to Files-1) and starts
// an empty log.
func (l *serviceLog) rotate() {
	l.f.Close()
	l.f = nil
	for i := l.lim.Files - 1; i >= 1; i-- {
		from := l.path
		if i > 1 {
			from = fmt.Sprintf("%s.%d", l.path, i-1)
		}
		os.Rename(from, fmt.Sprintf("%s.%d", l.path, i))
	}
	if l.lim.Files <= 1 {
		os.Remove(l.path)
	}
	if err := l.open(); err != nil {
		l.f = nil
	}
}

// changed returns a channel closed when the log next grows.
func (l *serviceLog) changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.grew
}

// close stops copying: what the pipe holds stays there for the next agent.
func (l *serviceLog) close() {
	l.pipe.Close()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// readLines returns the last n lines of the log at path and its rotated
// copies, oldest first (n <= 0: all).
func readLines(path string, files, n int) ([]string, error) {
	var all []string
	for i := files - 1; i >= 0; i-- {
		p := path
		if i > 0 {
			p = fmt.Sprintf("%s.%d", path, i)
		}
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			all = append(all, sc.Text())
		}
	}
	if n > 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	return all, nil
}

var _ = io.EOF
