package seccomp

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDefaultSyscalls(t *testing.T) {
	got := DefaultSyscalls()
	if !slices.IsSorted(got) {
		t.Errorf("DefaultSyscalls is not sorted")
	}
	if len(slices.Compact(slices.Clone(got))) != len(got) {
		t.Errorf("DefaultSyscalls has duplicates")
	}
	// Both the legacy calls and their *at variants, since busybox on
	// amd64 calls mkdir, not mkdirat.
	for _, want := range []string{
		"open", "openat", "openat2", "mkdir", "mkdirat", "unlink", "unlinkat",
		"rename", "renameat", "renameat2", "stat", "newfstatat", "statx",
		"access", "faccessat2", "readlink", "readlinkat", "symlink", "symlinkat",
		"link", "linkat", "chmod", "fchmodat", "fork", "vfork", "execve",
		"execveat", "wait4", "exit_group", "rseq", "futex", "socket",
		"accept4", "epoll_pwait", "pipe2", "eventfd2", "timerfd_create",
		"inotify_init1", "fcntl", "dup3", "uname", "getrandom",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("DefaultSyscalls lacks %s", want)
		}
	}
	for _, name := range neverDefault {
		if slices.Contains(got, name) {
			t.Errorf("DefaultSyscalls allows %s, which no app may call by default", name)
		}
	}
	for _, name := range []string{ioctlCall, cloneCall, clone3Call, personalityCall} {
		if slices.Contains(got, name) {
			t.Errorf("DefaultSyscalls allows %s outright; it is allowed only with safe arguments", name)
		}
	}
}

func TestModeString(t *testing.T) {
	for _, tc := range []struct {
		m    Mode
		want string
	}{{Strict, "strict"}, {Devmode, "devmode"}, {Mode(7), "Mode(7)"}} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestCheckProgram(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
		err  string
	}{
		{"empty", 0, "empty"},
		{"one instruction", 8, ""},
		{"partial instruction", 12, "not a whole number"},
		{"at the limit", 8 * bpfMaxInsns, ""},
		{"over the limit", 8 * (bpfMaxInsns + 1), "longer than the kernel's limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkProgram(make([]byte, tc.size))
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("got %v, want no error", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("got %v, want an error with %q", err, tc.err)
			}
		})
	}
}

func TestWriteProfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.bpf")
	for _, prog := range [][]byte{bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 24)} {
		if err := WriteProfile(path, prog); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, prog) {
			t.Errorf("got %x, want %x", got, prog)
		}
	}
	if err := WriteProfile(path, []byte{1, 2, 3}); err == nil {
		t.Errorf("got no error writing a 3-byte program, want one")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("got %d entries, want 1 (temporary files left behind)", len(entries))
	}
}

func TestComplementBlocks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		excluded []uint64
		blocks   int
	}{
		{"nothing", nil, 1},
		{"zero", []uint64{0}, 32},
		{"top", []uint64{0xffffffff}, 32},
		{"terminal injection", []uint64{0x5412, 0x541c}, 34}, // TIOCSTI, TIOCLINUX
		{"neighbours", []uint64{0x5412, 0x5413}, 31},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blocks := complementBlocks(tc.excluded)
			if len(blocks) != tc.blocks {
				t.Errorf("got %d blocks, want %d", len(blocks), tc.blocks)
			}
			matches := func(v uint64) int {
				n := 0
				for _, b := range blocks {
					if v&b.mask == b.value {
						n++
					}
				}
				return n
			}
			probes := []uint64{0, 1, 0x5400, 0x5411, 0x5414, 0x541b, 0x541d, 0x7fffffff, 0x80000000, 0xffffffff}
			for _, e := range tc.excluded {
				probes = append(probes, e)
			}
			for _, v := range probes {
				want := 1
				if slices.Contains(tc.excluded, v) {
					want = 0
				}
				if got := matches(v); got != want {
					t.Errorf("value %#x is in %d blocks, want %d", v, got, want)
				}
			}
		})
	}
}
