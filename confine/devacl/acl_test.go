package devacl

import (
	"bytes"
	"testing"

	"paddock.dev/paddock/internal/testutil"
)

func TestSetAndRemoveUser(t *testing.T) {
	tests := []struct {
		name      string
		mode      uint32
		grant     []uint32
		perm      uint16
		revoke    []uint32
		want      string
		wantEmpty bool
	}{
		{name: "one user on a root-only node", mode: 0o600, grant: []uint32{70001}, perm: PermRead | PermWrite,
			want: "user::rw-,user:70001:rw-,group::---,mask::rw-,other::---"},
		{name: "mask keeps the owning group's bits", mode: 0o660, grant: []uint32{70001}, perm: PermRead,
			want: "user::rw-,user:70001:r--,group::rw-,mask::rw-,other::---"},
		{name: "two users sorted", mode: 0o600, grant: []uint32{70009, 70002}, perm: PermRead | PermWrite,
			want: "user::rw-,user:70002:rw-,user:70009:rw-,group::---,mask::rw-,other::---"},
		{name: "revoke one of two", mode: 0o640, grant: []uint32{70009, 70002}, perm: PermRead | PermWrite, revoke: []uint32{70009},
			want: "user::rw-,user:70002:rw-,group::r--,mask::rw-,other::---"},
		{name: "revoke the last is the mode again", mode: 0o640, grant: []uint32{70001}, perm: PermRead | PermWrite, revoke: []uint32{70001},
			want: "user::rw-,group::r--,other::---", wantEmpty: true},
		{name: "revoke a user never granted", mode: 0o600, revoke: []uint32{70001},
			want: "user::rw-,group::---,other::---", wantEmpty: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := FromMode(tt.mode)
			for _, u := range tt.grant {
				a.SetUser(u, tt.perm)
			}
			for _, u := range tt.revoke {
				a.RemoveUser(u)
			}
			if got := a.String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if got := a.Minimal(); got != tt.wantEmpty {
				t.Errorf("Minimal: got %v, want %v", got, tt.wantEmpty)
			}
			back, err := Parse(a.Encode())
			if err != nil {
				t.Fatalf("Parse(Encode()): %v", err)
			}
			if back.String() != a.String() {
				t.Errorf("round trip: got %s, want %s", back, a)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	good := FromMode(0o600)
	good.SetUser(70001, PermRead)
	enc := good.Encode()
	tests := map[string][]byte{
		"empty":       nil,
		"short entry": enc[:len(enc)-3],
		"version 1":   append([]byte{1, 0, 0, 0}, enc[4:]...),
		"no mask":     FromMode(0o600).Encode()[:4],
		"unknown tag": append(append([]byte{}, enc...), 0x40, 0, 4, 0, 0xff, 0xff, 0xff, 0xff),
		"entries swapped": func() []byte {
			b := append([]byte{}, enc...)
			copy(b[4:12], enc[12:20])
			copy(b[12:20], enc[4:12])
			return b
		}(),
	}
	for name, b := range tests {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: Parse accepted % x", name, b)
		}
	}
}

// FuzzParse checks that an attribute value is either refused or an ACL
// that encodes back to the same bytes and survives a grant and a revoke.
// Seeds are in testdata/.
func FuzzParse(f *testing.F) {
	testutil.AddSeeds(f, "testdata/*.acl")
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data)
		if err != nil {
			return
		}
		if got := a.Encode(); !bytes.Equal(got, data) {
			t.Fatalf("Encode(Parse(x)) = % x, want % x", got, data)
		}
		a.SetUser(70001, PermRead|PermWrite)
		if _, err := Parse(a.Encode()); err != nil {
			t.Fatalf("after SetUser: %v", err)
		}
		a.RemoveUser(70001)
		if _, err := Parse(a.Encode()); err != nil {
			t.Fatalf("after RemoveUser: %v", err)
		}
	})
}
