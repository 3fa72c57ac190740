package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Range streams bytes [from, to) of the artifact of the given size, served
// by the mirrors in urls, into w, in order, without a file of its own: for
// writers that check and place the bytes themselves, such as a base update
// writing a slot. A cut connection resumes with a Range request from the
// first byte not yet given to w; a mirror that fails is tried again with
// backoff (opts.Retries, an attempt that moved forward not counting), then
// left for the next; a mirror slower than the minimum rate fails its
// attempt (ErrTooSlow). An error from w ends Range at once and is returned
// as it is. Range applies no deadline of its own: the caller's context
// bounds it (see Limits.DeadlineFor). It returns how many bytes it gave to w.
func Range(ctx context.Context, urls []string, size, from, to int64, w io.Writer, opts Options) (int64, error) {
	if _, err := checkArgs(urls, size, fmt.Sprintf("%064x", 0)); err != nil {
		return 0, err
	}
	if from < 0 || to > size || from >= to {
		return 0, fmt.Errorf("internal error: range %d-%d of %d bytes", from, to, size)
	}
	r := &ranger{opts: opts, size: size, pos: from, to: to, w: w, minRate: opts.minRate(opts.RateLimit), window: opts.window()}
	if r.client = opts.Client; r.client == nil {
		r.client = defaultClient
	}
	var errs mirrorErrors
	for _, u := range urls {
		err := r.mirror(ctx, u)
		if err == nil {
			return r.pos - from, nil
		}
		var sink *sinkError
		if errors.As(err, &sink) {
			return r.pos - from, sink.err
		}
		if ctx.Err() != nil {
			return r.pos - from, err
		}
		errs = append(errs, err)
	}
	return r.pos - from, errs
}

// DeadlineFor returns how long a download of size bytes may take in all
// under these limits and the rate cap rateLimit (0 for none); 0 means no
// deadline.
func (l Limits) DeadlineFor(size, rateLimit int64) time.Duration {
	return l.deadline(size, l.minRate(rateLimit))
}

// sinkError carries an error of the writer through the attempt.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// ranger is the state of one Range call.
type ranger struct {
	client  *http.Client
	opts    Options
	size    int64
	pos, to int64
	w       io.Writer
	minRate int64
	window  time.Duration
}

// mirror tries one mirror until it delivers the range, fails for good, or
// used up its retries.
func (r *ranger) mirror(ctx context.Context, u string) error {
	failures := 0
	for {
		start := r.pos
		err := r.attempt(ctx, u)
		var sink *sinkError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &sink), ctx.Err() != nil, isPermanent(err):
			return err
		case r.pos > start && !errors.Is(err, ErrTooSlow):
			failures = 0
			continue
		}
		failures++
		if failures > r.opts.Retries {
			return err
		}
		if err := sleep(ctx, backoff(failures)); err != nil {
			return fmt.Errorf("%s: %w", redact(u), err)
		}
	}
}

// attempt asks u for the rest of the range and streams what comes into w.
func (r *ranger) attempt(ctx context.Context, u string) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchdog := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer watchdog.Stop()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return &mirrorError{url: redact(u), err: err, permanent: true}
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "paddock-fetch")
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", r.pos, r.to-1))
	resp, err := r.client.Do(req)
	if err != nil {
		return r.netErr(actx, u, err)
	}
	defer resp.Body.Close()
	body, err := r.accept(u, resp)
	if err != nil {
		return err
	}
	guard := guardRate(r.minRate, r.window, cancel)
	defer guard.close()
	buf := make([]byte, bufSize(r.opts.RateLimit))
	lim := limiter{rate: r.opts.RateLimit, start: time.Now()}
	for r.pos < r.to {
		k, rerr := body.Read(buf[:min(int64(len(buf)), r.to-r.pos)])
		if k > 0 {
			watchdog.Reset(stallTimeout)
			guard.add(k)
			if _, err := r.w.Write(buf[:k]); err != nil {
				return &sinkError{err}
			}
			r.pos += int64(k)
			if err := lim.wait(actx, k); err != nil {
				return r.netErr(actx, u, err)
			}
		}
		if rerr == io.EOF && r.pos < r.to {
			rerr = io.ErrUnexpectedEOF
		}
		if rerr != nil && r.pos < r.to {
			return r.netErr(actx, u, rerr)
		}
	}
	return nil
}

// accept checks the response head and returns the body from r.pos on: a
// 206 for exactly the range asked, or a 200 of the whole artifact (a
// mirror without Range support), whose bytes before r.pos are skipped.
func (r *ranger) accept(u string, resp *http.Response) (io.Reader, error) {
	switch resp.StatusCode {
	case http.StatusPartialContent:
		cr := resp.Header.Get("Content-Range")
		start, end, total, ok := parseContentRange(cr)
		if ok && total != r.size {
			return nil, &mirrorError{url: redact(u), permanent: true,
				err:  fmt.Errorf("%w: Content-Range %q says the file has %d bytes, want %d", ErrSizeMismatch, cr, total, r.size),
				hint: "the mirror serves a different file; fix the mirror or the expected size"}
		}
		if !ok || start != r.pos || end != r.to-1 {
			return nil, &mirrorError{url: redact(u), permanent: true,
				err:  fmt.Errorf("answered Content-Range %q to Range bytes=%d-%d", cr, r.pos, r.to-1),
				hint: "the mirror mishandles ranges; fix its Range support or remove it from the list"}
		}
		return resp.Body, nil
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != r.size {
			return nil, &mirrorError{url: redact(u), permanent: true,
				err:  fmt.Errorf("%w: Content-Length is %d, want %d", ErrSizeMismatch, resp.ContentLength, r.size),
				hint: "the mirror serves a different file; fix the mirror or the expected size"}
		}
		if _, err := io.CopyN(io.Discard, resp.Body, r.pos); err != nil {
			return nil, &mirrorError{url: redact(u), err: fmt.Errorf("skipping to byte %d: %w", r.pos, netError(err))}
		}
		return resp.Body, nil
	}
	return nil, statusErr(u, resp)
}

// netErr describes a failed request or read.
func (r *ranger) netErr(ctx context.Context, u string, err error) error {
	var slow *slowError
	if errors.As(context.Cause(ctx), &slow) {
		return &mirrorError{url: redact(u), err: fmt.Errorf("%w, at byte %d of %d", slow, r.pos, r.size),
			hint: "the mirror or the network is too slow; use a faster mirror, or lower the download's minimum rate"}
	}
	if errors.Is(context.Cause(ctx), errStalled) {
		return &mirrorError{url: redact(u), err: fmt.Errorf("no data for %v at byte %d", stallTimeout, r.pos),
			hint: "the connection stalled; check the network"}
	}
	return &mirrorError{url: redact(u), err: fmt.Errorf("connection lost at byte %d of %d: %w", r.pos, r.size, netError(err)),
		hint: "check that the mirror is up and reachable from this device"}
}
