package baseupdate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"paddock.dev/paddock/internal/atomicfile"
)

// checkpoint is what an update records after each verified and synced
// stretch of the slot, so that an interrupted update resumes there.
type checkpoint struct {
	// SHA256 and Slot name the image being written and where: a
	// checkpoint of another image or slot is ignored.
	SHA256 string `json:"sha256"`
	Slot   string `json:"slot"`
	// Verified is how many chunks, from the first, are checked, written,
	// synced, read back and checked again.
	Verified int64 `json:"verified"`
	// ReadBack says that the Verified chunks were also read back from
	// the medium and checked; a checkpoint without it (of an older
	// agent) is a start from zero.
	ReadBack bool `json:"read-back,omitempty"`
	// Downloaded and Copied count the bytes of those chunks that came
	// from the source and from the running slot, over every run.
	Downloaded int64 `json:"downloaded"`
	Copied     int64 `json:"copied"`
}

// maxCheckpoint bounds the checkpoint file that is read.
const maxCheckpoint = 4 << 10

// loadCheckpoint reads the checkpoint at path; a missing or damaged one,
// or one of another image or slot, is a start from zero.
func loadCheckpoint(path, sha256, slot string) checkpoint {
	zero := checkpoint{SHA256: sha256, Slot: slot}
	data, err := os.ReadFile(path)
	if err != nil || len(data) > maxCheckpoint {
		return zero
	}
	var c checkpoint
	if json.Unmarshal(data, &c) != nil || c.SHA256 != sha256 || c.Slot != slot || c.Verified < 0 || c.Downloaded < 0 || c.Copied < 0 {
		return zero
	}
	return c
}

// save writes the checkpoint atomically.
func (c checkpoint) save(path string) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("cannot record the update's checkpoint: %w", err)
	}
	return nil
}

// recordSize is the size of the checkpoint file that a write records in
// place: one sector, which the medium writes whole or not at all.
const recordSize = 512

// recorder records the checkpoint of a write in place, in one sector of
// a file kept open, synced with fdatasync: a third of the cost of
// replacing the file (a new file, its sync, a rename and the directory's
// sync) after every batch. A checkpoint too long for the sector (a slot
// path of hundreds of bytes) replaces the file instead.
type recorder struct {
	path   string
	f      *os.File
	synced bool // the file's size and directory entry are durable
}

func openRecorder(path string) (*recorder, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot record the update's checkpoint: %w", err)
	}
	return &recorder{path: path, f: f}, nil
}

func (r *recorder) close() { r.f.Close() }

// save records c in place.
func (r *recorder) save(c checkpoint) error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if len(data) >= recordSize {
		r.synced = false
		return c.save(r.path)
	}
	rec := make([]byte, recordSize)
	copy(rec, data)
	for i := len(data); i < recordSize-1; i++ {
		rec[i] = ' '
	}
	rec[recordSize-1] = '\n'
	if _, err := r.f.WriteAt(rec, 0); err != nil {
		return fmt.Errorf("cannot record the update's checkpoint: %w", err)
	}
	if r.synced {
		err = datasync(r.f)
	} else if err = r.f.Truncate(recordSize); err == nil {
		if err = r.f.Sync(); err == nil {
			err = atomicfile.SyncDir(filepath.Dir(r.path))
		}
		r.synced = err == nil
	}
	if err != nil {
		return fmt.Errorf("cannot record the update's checkpoint: %w", err)
	}
	return nil
}

// RemoveCheckpoint removes the checkpoint at path: the next update of the
// slot starts from zero.
func RemoveCheckpoint(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
