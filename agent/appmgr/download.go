package appmgr

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"paddock.dev/paddock/agent/state"
	"paddock.dev/paddock/internal/atomicfile"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/ota/fetch"
	"paddock.dev/paddock/ota/revisions"
)

// Source is where an install downloads its package from: mirrors tried in
// order, within limits. It is kept in the change's data ("download").
type Source struct {
	URLs   []string     `json:"urls"`
	Limits fetch.Limits `json:"limits"`
}

// downloadRetries is how many times each mirror is tried again.
const downloadRetries = 3

// InstallFromURL checks the assertion bundle against the trusted keys and
// starts the change that downloads the package from src and installs or
// refreshes the app. The download is the change's first task: it resumes
// after a restart from what it had received, and the package is verified
// as it streams against the size and sha256 of the bundle's app-revision.
// It returns the change id; a refused request changes nothing.
func (m *Manager) InstallFromURL(bundle []byte, src Source, opts InstallOptions) (string, error) {
	if err := checkSource(src); err != nil {
		return "", err
	}
	in, err := m.beginInstall(bundle, opts)
	if err != nil {
		return "", err
	}
	defer in.release()
	return m.startInstall(in, bundle, opts, &src), nil
}

// checkSource refuses a source without mirrors or with one that is not
// an http or https URL.
func checkSource(src Source) error {
	if len(src.URLs) == 0 {
		return refused("cannot install: no URL to download the package from")
	}
	for _, s := range src.URLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return refused("cannot install: %q is not an http or https URL", s)
		}
	}
	return nil
}

// downloadTask returns the task that downloads the package of rev, and
// records src in chg; the state must be locked.
func (m *Manager) downloadTask(chg *state.Change, name string, rev Revision, src Source) *state.Task {
	chg.Set("download", src)
	return m.st.NewTask("download", fmt.Sprintf("Download %q revision %d", name, rev.Revision))
}

// downloadPath is where the package of a revision is downloaded to; the
// partial download is beside it, with ".partial" added.
func downloadPath(name string, rev int) string {
	return filepath.Join(downloadsDir(), fmt.Sprintf("%s_%d.pdk", name, rev))
}

// downloadsDir holds the downloads of install changes.
func downloadsDir() string { return filepath.Join(dirs.LibDir, "downloads") }

// doDownload downloads the package into the download folder, resuming a
// partial download, then moves it, verified, into the store. When the
// agent stops it gives up and asks to be run again at the next start.
func (m *Manager) doDownload(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	var src Source
	m.st.Lock()
	err = t.Change().Get("download", &src)
	m.st.Unlock()
	if err != nil {
		return fmt.Errorf("internal error: change lacks its download source: %w", err)
	}
	blob := revisions.BlobPath(s.name, s.rev.Revision)
	if fi, err := os.Stat(blob); err == nil && fi.Size() == s.rev.Size {
		return nil // moved in, verified, before a restart
	}
	dest := downloadPath(s.name, s.rev.Revision)
	for _, dir := range []string{filepath.Dir(dest), filepath.Dir(blob)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cannot download %s: %w", s.name, err)
		}
	}
	var have int64
	if fi, err := os.Stat(dest + ".partial"); err == nil {
		have = min(fi.Size(), s.rev.Size)
	}
	if err := revisions.CheckPackageSpace(s.name, s.rev.Revision, s.rev.Size-have); err != nil {
		return err
	}
	ctx := m.runner.Stopping()
	m.downloads.start(t.ID(), s.rev.Size)
	defer m.downloads.end(t.ID())
	err = fetch.Download(ctx, src.URLs, dest, s.rev.Size, s.rev.SHA256, fetch.Options{
		Limits:   src.Limits,
		Retries:  downloadRetries,
		Progress: func(done, total int64) { m.downloads.set(t.ID(), done) },
	})
	if err != nil && ctx.Err() != nil {
		return state.Retry{Reason: "the agent stops; the download resumes at its next start"}
	}
	if err != nil {
		// The partial download stays: a new command for the same
		// revision resumes it.
		return err
	}
	if err := os.Rename(dest, blob); err != nil {
		return fmt.Errorf("cannot store the package of %s: %w", s.name, err)
	}
	return atomicfile.SyncDir(filepath.Dir(blob))
}

// undoDownload removes what the download left: the downloaded or partial
// file, and the stored package of a new revision.
func (m *Manager) undoDownload(t *state.Task) error {
	s, err := m.setup(t)
	if err != nil {
		return err
	}
	dest := downloadPath(s.name, s.rev.Revision)
	var errs []error
	for _, p := range []string{dest, dest + ".partial"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if s.isNew() {
		if err := os.Remove(revisions.BlobPath(s.name, s.rev.Revision)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DownloadProgress reports how far the download task with the given id
// is, while it runs.
func (m *Manager) DownloadProgress(task string) (done, total int64, ok bool) {
	return m.downloads.get(task)
}

// downloads is how far each download in progress is, in memory only: a
// progress report is not worth a write to flash.
type downloads struct {
	mu sync.Mutex
	m  map[string][2]int64 // task id: done, total
}

func (d *downloads) start(task string, total int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = map[string][2]int64{}
	}
	d.m[task] = [2]int64{0, total}
}

func (d *downloads) set(task string, done int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.m[task]; ok {
		d.m[task] = [2]int64{done, p[1]}
	}
}

func (d *downloads) end(task string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, task)
}

func (d *downloads) get(task string) (done, total int64, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.m[task]
	return p[0], p[1], ok
}
