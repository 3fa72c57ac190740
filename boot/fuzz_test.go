package boot

import (
	"encoding/binary"
	"hash/crc32"
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
