package boot

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// sealRecord writes the sequence and the checksum into the trailer of rec.
func sealRecord(rec []byte, seq uint32) {
	binary.BigEndian.PutUint32(rec[recordSize-8:], seq)
	binary.BigEndian.PutUint32(rec[recordSize-4:], crc32.ChecksumIEEE(rec[:recordSize-trailerSize]))
}

// FuzzParseRecord feeds the record parser arbitrary text, sealed with a
// valid checksum so the fuzzer gets past it, and raw bytes. A record that
// parses must survive encoding and parsing again unchanged. Seeds are in
// testdata/fuzz/FuzzParseRecord.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte("paddock-bootenv-1\nslot=b\ntry=a\nboot_count=1\n"), true)
	f.Add([]byte("paddock-bootenv-1\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, seal bool) {
		rec := data
		if seal {
			rec = make([]byte, recordSize)
			copy(rec[:recordSize-trailerSize], data)
			sealRecord(rec, 42)
		}
		e, seq, err := parseRecord(rec)
		if err != nil {
			return
		}
		out, err := encodeRecord(e, seq)
		if err != nil {
			t.Fatalf("parsed %+v but cannot encode it: %v", *e, err)
		}
		e2, seq2, err := parseRecord(out)
		if err != nil || *e2 != *e || seq2 != seq {
			t.Fatalf("round trip: got %+v seq %d err %v, want %+v seq %d", e2, seq2, err, *e, seq)
		}
	})
}

// FuzzLoad gives Load an arbitrary boot environment partition, each copy
// made of text sealed with a valid trailer (so the fuzzer gets past the
// checksum) or of raw bytes: whatever it holds, Load returns an environment
// to boot by, and afterwards both copies are valid (or blank, never
// written) and read back as that environment, with nothing left to repair.
// Seeds are in testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("paddock-bootenv-1\nslot=b\ntry=a\n"), true, []byte("paddock-bootenv-1\nslot=b\n"), true, uint32(3))
	f.Add([]byte("paddock-bootenv-1\nslot=b\n"), true, []byte{}, false, uint32(1))
	f.Add([]byte("junk"), false, []byte("paddock-bootenv-1\nslot=c\n"), true, uint32(0))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, a []byte, sealA bool, b []byte, sealB bool, seq uint32) {
		disk := make([]byte, envSize)
		for i, c := range []struct {
			data []byte
			seal bool
		}{{a, sealA}, {b, sealB}} {
			rec := disk[i*recordSize : (i+1)*recordSize]
			if c.seal {
				copy(rec[:recordSize-trailerSize], c.data)
				sealRecord(rec, seq+uint32(i))
			} else {
				copy(rec, c.data)
			}
		}
		p := filepath.Join(dir, "bootenv")
		if err := os.WriteFile(p, disk, 0o600); err != nil {
			t.Fatal(err)
		}
		e, rep := Load(p)
		if rep != nil && rep.Err != nil {
			t.Fatalf("cannot repair: %v", rep.Err)
		}
		if err := e.check(); err != nil {
			t.Fatalf("Load returned %+v, which cannot be booted: %v", *e, err)
		}
		copies, err := readCopies(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range copies {
			if c.err != nil {
				t.Fatalf("copy %d still damaged after Load: %v", i+1, c.err)
			}
		}
		again, rep := Load(p)
		if rep != nil || *again != *e {
			t.Fatalf("second Load: got %+v, repair %v, want %+v and no repair", *again, rep, *e)
		}
	})
}
