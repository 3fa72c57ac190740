// Package fetch downloads an artifact to a file over HTTP(S), resumably and
// verified: the bytes land in DEST.partial, which survives a cut connection or
// a reboot and is resumed with a Range request, and the file is renamed to
// DEST only when its size and sha256 match what the signed assertion says.
package fetch

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sentinel errors that Download wraps, for callers that tell a bad mirror
// from a bad network.
var (
	// ErrDigestMismatch means a mirror served bytes whose sha256 is not the
	// expected one.
	ErrDigestMismatch = errors.New("sha256 mismatch")
	// ErrSizeMismatch means a mirror served more or fewer bytes than expected.
	ErrSizeMismatch = errors.New("size mismatch")
)

// Package variables that tests swap.
var (
	// backoffBase is the delay before the first retry; it doubles per retry.
	backoffBase = 500 * time.Millisecond
	// backoffMax caps the delay between retries.
	backoffMax = 30 * time.Second
	// stallTimeout ends an attempt that receives no byte for that long; the
	// default client has no overall timeout, so this is what frees a
	// connection that silently died. A connection that trickles is
	// caught by the minimum rate (Limits) instead.
	stallTimeout = 60 * time.Second
	// progressEvery is the least time between two progress reports.
	progressEvery = 100 * time.Millisecond
)

// Options tune Download. The zero value is usable.
type Options struct {
	// Progress, if set, is called with the bytes verified so far and the
	// total, at most every ~100 ms and once at the end with done == total.
	// done only goes down when the download must start over (the server
	// ignored the resume or the partial file was bad).
	Progress func(done, total int64)
	// RateLimit caps the download speed in bytes per second; 0 means none.
	RateLimit int64
	// Retries is how many times each mirror is tried again after a failure,
	// with exponential backoff and jitter. An attempt that moved the
	// download forward does not count.
	Retries int
	// Client makes the requests; nil means a client with connect, TLS and
	// response-header timeouts but no overall timeout (a stalled body is
	// caught by a watchdog instead).
	Client *http.Client
	// Limits bound how slow each transfer and how long the whole download
	// may be; the zero value takes the defaults.
	Limits
}

// Download fetches the artifact of the given size and sha256 (hex) into
// dest, trying the mirrors in urls in order. It writes into dest+".partial",
// resuming whatever an earlier, interrupted call left there, and renames it
// to dest only after the size and digest match and the data is synced. A
// mirror that serves the wrong bytes is left for the next one and its bytes
// are deleted. A transfer slower than the minimum rate fails its attempt
// (ErrTooSlow), and the whole download ends at its deadline (ErrDeadline).
// On failure the error is one line naming each mirror and what went wrong;
// the partial file stays unless its bytes were wrong.
func Download(ctx context.Context, urls []string, dest string, size int64, sha256hex string, opts Options) error {
	want, err := checkArgs(urls, size, sha256hex)
	if err != nil {
		return fmt.Errorf("cannot download %s: %w", dest, err)
	}
	d := &downloader{
		client:   opts.Client,
		opts:     opts,
		dest:     dest,
		size:     size,
		want:     want,
		progress: progress{fn: opts.Progress, total: size},
		minRate:  opts.minRate(opts.RateLimit),
		window:   opts.window(),
	}
	if d.client == nil {
		d.client = defaultClient
	}
	if limit := opts.deadline(size, d.minRate); limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, limit, &deadlineError{limit: limit})
		defer cancel()
	}
	defer d.closePartial()
	var errs mirrorErrors
	for _, u := range urls {
		err := d.mirror(ctx, u)
		if err == nil {
			return d.commit()
		}
		var (
			local    *localError
			deadline *deadlineError
		)
		switch {
		case errors.As(context.Cause(ctx), &deadline):
			return fmt.Errorf("cannot download %s: %w: %s of %s received, the last from %s; the partial download is kept and resumes on the next try (raise the deadline or use a faster mirror)",
				dest, deadline, sizeText(d.received()), sizeText(size), redact(u))
		case ctx.Err() != nil || errors.As(err, &local):
			return fmt.Errorf("cannot download %s: %w", dest, err)
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("cannot download %s: %w", dest, errs)
}

// checkArgs validates what the caller passed and returns the digest to
// expect, lower-case.
func checkArgs(urls []string, size int64, sha256hex string) (string, error) {
	if len(urls) == 0 {
		return "", errors.New("internal error: no mirror URL given")
	}
	if size < 0 {
		return "", fmt.Errorf("internal error: negative size %d", size)
	}
	want := strings.ToLower(sha256hex)
	if b, err := hex.DecodeString(want); err != nil || len(b) != 32 {
		return "", fmt.Errorf("internal error: %q is not a hex sha256", sha256hex)
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", fmt.Errorf("mirror %q is not an http or https URL (fix the mirror list)", s)
		}
	}
	return want, nil
}

// defaultClient bounds the steps that can hang before any data flows, but
// not the whole transfer: a large artifact on a slow link takes hours.
var defaultClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   2,
		ForceAttemptHTTP2:     true,
	},
}

// downloader is the state of one Download call.
type downloader struct {
	client   *http.Client
	opts     Options
	dest     string
	size     int64
	want     string
	p        *partial // nil until the first attempt opens it
	progress progress
	minRate  int64         // bytes/s, 0 for none
	window   time.Duration // over which minRate is measured
}

// received is how many bytes of the artifact are on disk.
func (d *downloader) received() int64 {
	if d.p == nil {
		return 0
	}
	return d.p.n
}

// mirror tries one mirror until it delivers the artifact, fails for good,
// or used up its retries.
func (d *downloader) mirror(ctx context.Context, u string) error {
	failures := 0
	for {
		progressed, err := d.attempt(ctx, u)
		var local *localError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w (the partial download is kept and resumes on the next try)", redact(u), ctx.Err())
		case errors.As(err, &local), isPermanent(err):
			return err
		case errors.Is(err, errRestart):
			continue // the partial was dropped; start over without a Range
		case progressed && !errors.Is(err, ErrTooSlow):
			// A trickle moves forward too, but is a failure: counting it
			// as progress would keep a crawling mirror forever.
			failures = 0 // a flaky link that keeps moving is not a dead mirror
			continue
		}
		failures++
		if failures > d.opts.Retries {
			return err
		}
		if err := sleep(ctx, backoff(failures)); err != nil {
			return fmt.Errorf("%s: %w (the partial download is kept and resumes on the next try)", redact(u), err)
		}
	}
}

// backoff returns the delay before retry n (from 1): exponential, capped,
// with jitter so that a fleet does not come back in lockstep.
func backoff(n int) time.Duration {
	d := backoffBase
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	d = min(d, backoffMax)
	return d/2 + rand.N(d/2+1)
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commit makes the verified partial file dest.
func (d *downloader) commit() error {
	p := d.p
	d.p = nil
	if err := p.commit(d.dest); err != nil {
		return fmt.Errorf("cannot download %s: %w", d.dest, err)
	}
	d.progress.finish()
	return nil
}

func (d *downloader) closePartial() {
	if d.p != nil {
		d.p.close()
	}
}

// redact hides a password in a URL for error messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	return u.Redacted()
}
