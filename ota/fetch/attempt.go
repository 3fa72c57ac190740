package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// attempt makes one request to u and streams the body into the partial
// file. progressed reports whether the partial file grew.
func (d *downloader) attempt(ctx context.Context, u string) (progressed bool, err error) {
	if d.p == nil {
		if d.p, err = openPartial(d.dest+".partial", d.size); err != nil {
			return false, err
		}
	}
	if d.p.n == d.size { // complete from an earlier run, or a zero-byte artifact
		return false, d.verify(u)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()

	resp, err := d.get(actx, u, d.p.n)
	if err != nil {
		return false, d.netErr(actx, u, err, "")
	}
	defer resp.Body.Close()
	want, err := d.accept(u, resp)
	if err != nil {
		return false, err
	}
	start := d.p.n
	guard := guardRate(d.minRate, d.window, cancel)
	defer guard.close()
	err = d.copy(actx, u, resp.Body, want, watchdog, guard)
	progressed = d.p.n > start
	if err != nil {
		return progressed, err
	}
	if d.p.n < d.size { // the server answered a shorter range than asked
		return progressed, &mirrorError{url: redact(u), err: fmt.Errorf("sent bytes %d-%d of %d only", start, d.p.n-1, d.size)}
	}
	return progressed, d.verify(u)
}

// get asks for the artifact from byte from on.
func (d *downloader) get(ctx context.Context, u string, from int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	// The size, the ranges and the digest are those of the file itself, so
	// no transparent compression.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "paddock-fetch")
	if from > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
	}
	return d.client.Do(req)
}

// accept checks the response head against what was asked and returns how
// many body bytes to read. A 200 drops the partial file: it is the whole
// artifact again.
func (d *downloader) accept(u string, resp *http.Response) (int64, error) {
	p := d.p
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != d.size {
			return 0, d.sizeErr(u, fmt.Errorf("%w: Content-Length is %d, want %d", ErrSizeMismatch, resp.ContentLength, d.size))
		}
		if err := p.reset(); err != nil {
			return 0, err
		}
		p.src = u
		return d.size, nil
	case http.StatusPartialContent:
		return d.acceptRange(u, resp)
	case http.StatusRequestedRangeNotSatisfiable:
		if p.n > 0 {
			// The mirror's file is no longer than the partial one, so one of
			// them is wrong: start over, and a 200 will tell which.
			if err := p.reset(); err != nil {
				return 0, err
			}
			return 0, errRestart
		}
	}
	return 0, statusErr(u, resp)
}

// acceptRange checks that a 206 answers Range: bytes=N- for this artifact.
func (d *downloader) acceptRange(u string, resp *http.Response) (int64, error) {
	p := d.p
	cr := resp.Header.Get("Content-Range")
	start, end, total, ok := parseContentRange(cr)
	if ok && total != d.size {
		return 0, d.sizeErr(u, fmt.Errorf("%w: Content-Range %q says the file has %d bytes, want %d", ErrSizeMismatch, cr, total, d.size))
	}
	if !ok || p.n == 0 || start != p.n || end >= d.size ||
		(resp.ContentLength >= 0 && resp.ContentLength != end-start+1) {
		return 0, &mirrorError{url: redact(u), permanent: true,
			err:  fmt.Errorf("answered Content-Range %q, Content-Length %d to Range bytes=%d-", cr, resp.ContentLength, p.n),
			hint: "the mirror mishandles resumed downloads; fix its Range support or remove it from the list"}
	}
	if p.src != u {
		p.src = ""
	}
	return end - start + 1, nil
}

// parseContentRange parses "bytes START-END/TOTAL".
func parseContentRange(s string) (start, end, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	first, last, found2 := strings.Cut(rng, "-")
	if !found || !found2 {
		return 0, 0, 0, false
	}
	var err [3]error
	start, err[0] = strconv.ParseInt(first, 10, 64)
	end, err[1] = strconv.ParseInt(last, 10, 64)
	total, err[2] = strconv.ParseInt(tot, 10, 64)
	if errors.Join(err[:]...) != nil || start < 0 || end < start || total <= end {
		return 0, 0, 0, false
	}
	return start, end, total, true
}

// copy streams n bytes of body into the partial file, then checks that the
// body ends there when it should hold the rest of the artifact.
func (d *downloader) copy(ctx context.Context, u string, body io.Reader, n int64, watchdog *time.Timer, guard *rateGuard) error {
	p := d.p
	buf := make([]byte, bufSize(d.opts.RateLimit))
	lim := limiter{rate: d.opts.RateLimit, start: time.Now()}
	for n > 0 {
		k, rerr := body.Read(buf[:min(int64(len(buf)), n)])
		if k > 0 {
			watchdog.Reset(stallTimeout)
			guard.add(k)
			if _, err := p.Write(buf[:k]); err != nil {
				return err
			}
			n -= int64(k)
			d.progress.update(p.n)
			if err := lim.wait(ctx, k); err != nil {
				return d.netErr(ctx, u, err, "")
			}
		}
		if rerr == io.EOF && n > 0 {
			rerr = io.ErrUnexpectedEOF
		}
		if rerr != nil && n > 0 {
			return d.netErr(ctx, u, rerr, fmt.Sprintf("connection lost after byte %d of %d: ", p.n, d.size))
		}
	}
	if p.n == d.size {
		// Reading one byte past the end is the only way to see that a
		// body without Content-Length is longer than the artifact.
		var one [1]byte
		if k, _ := io.ReadFull(body, one[:]); k > 0 {
			return d.sizeErr(u, fmt.Errorf("%w: the body is longer than %d bytes", ErrSizeMismatch, d.size))
		}
	}
	return nil
}

// verify compares the digest of the complete partial file with the one
// wanted. A mismatch deletes the file; if this mirror sent every byte of it,
// the mirror is wrong, otherwise the old bytes may be, and the mirror is
// tried again from scratch.
func (d *downloader) verify(u string) error {
	got := d.p.sum()
	if got == d.want {
		return nil
	}
	mirrorAtFault := d.p.src == u
	if err := d.p.discard(); err != nil {
		return err
	}
	d.p = nil
	if !mirrorAtFault {
		return errRestart
	}
	return &mirrorError{url: redact(u), permanent: true,
		err:  fmt.Errorf("%w: got %s, want %s", ErrDigestMismatch, got, d.want),
		hint: "the mirror serves a different or corrupt file; fix the mirror or the expected digest"}
}

func (d *downloader) sizeErr(u string, err error) error {
	return &mirrorError{url: redact(u), err: err, permanent: true,
		hint: "the mirror serves a different file; fix the mirror or the expected size"}
}

// netErr describes a failed request or read; prefix says how far it got.
func (d *downloader) netErr(ctx context.Context, u string, err error, prefix string) error {
	var slow *slowError
	if errors.As(context.Cause(ctx), &slow) {
		return &mirrorError{url: redact(u), err: fmt.Errorf("%w, at byte %d of %d", slow, d.p.n, d.size),
			hint: "the mirror or the network is too slow; use a faster mirror, or lower the download's minimum rate"}
	}
	if errors.Is(context.Cause(ctx), errStalled) {
		return &mirrorError{url: redact(u), err: fmt.Errorf("%sno data for %v", prefix, stallTimeout),
			hint: "the connection stalled; check the network"}
	}
	var local *localError
	if errors.As(err, &local) {
		return err
	}
	return &mirrorError{url: redact(u), err: fmt.Errorf("%s%w", prefix, netError(err)),
		hint: "check that the mirror is up and reachable from this device"}
}

// statusErr describes an HTTP status that does not deliver the artifact.
func statusErr(u string, resp *http.Response) error {
	e := &mirrorError{url: redact(u), err: fmt.Errorf("answered %s", resp.Status)}
	code := resp.StatusCode
	switch {
	case code == http.StatusNotFound || code == http.StatusGone:
		e.hint, e.permanent = "check the URL and that the artifact was uploaded to this mirror", true
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		e.hint, e.permanent = "check the mirror's access rights for this device", true
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		e.hint = "the mirror is overloaded or failing; try again later or use another mirror"
	default:
		e.hint, e.permanent = "the mirror does not serve this artifact as expected; check the URL", true
	}
	return e
}

// bufSize keeps reads small enough under a rate limit that the limit
// smooths the flow instead of letting bursts through.
func bufSize(rate int64) int {
	const most = 32 << 10
	if rate <= 0 {
		return most
	}
	return int(min(max(rate/20, 512), most))
}

// limiter holds the average rate since start at or below rate bytes/s.
type limiter struct {
	rate  int64
	start time.Time
	n     int64
}

func (l *limiter) wait(ctx context.Context, k int) error {
	if l.rate <= 0 {
		return nil
	}
	l.n += int64(k)
	due := l.start.Add(time.Duration(float64(l.n) / float64(l.rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		return sleep(ctx, d)
	}
	return nil
}

// progress throttles Options.Progress.
type progress struct {
	fn    func(done, total int64)
	total int64
	last  time.Time
	done  int64 // last reported
}

func (p *progress) update(done int64) {
	if p.fn == nil || time.Since(p.last) < progressEvery {
		return
	}
	p.last, p.done = time.Now(), done
	p.fn(done, p.total)
}

// finish reports the end, unless the last report already said so.
func (p *progress) finish() {
	if p.fn != nil && (p.last.IsZero() || p.done != p.total) {
		p.fn(p.total, p.total)
	}
}
