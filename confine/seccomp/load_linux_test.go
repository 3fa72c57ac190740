//go:build linux && cgo

package seccomp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"paddock.dev/paddock/internal/testutil"
)

// The test binary runs itself as a child to load filters, so the test
// process itself is never confined.
const (
	childEnv   = "PADDOCK_SECCOMP_TEST_CHILD"   // "probe" or "load"
	profileEnv = "PADDOCK_SECCOMP_TEST_PROFILE" // compiled program, or empty for none
	dirEnv     = "PADDOCK_SECCOMP_TEST_DIR"     // scratch directory of the child
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(childEnv); kind != "" {
		os.Exit(child(kind))
	}
	os.Exit(m.Run())
}

// child loads the profile (if any) on a locked thread with no_new_privs,
// as the launcher does, then runs kind and prints its report.
func child(kind string) int {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "no_new_privs:", err)
		return 2
	}
	start := time.Now()
	if path := os.Getenv(profileEnv); path != "" {
		if err := LoadFile(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	elapsed := time.Since(start)
	switch kind {
	case "load":
		fmt.Println(elapsed.Nanoseconds())
	case "probe":
		dir := os.Getenv(dirEnv)
		for _, p := range probes() {
			fmt.Printf("%s %d\n", p.name, int(p.call(dir)))
		}
	default:
		return 2
	}
	return 0
}

// probe is one system call made by the child. Each is harmless even when
// seccomp lets it through: the arguments make the kernel fail after the
// seccomp check (EINVAL, ENOENT, ESRCH, ...) and the child runs in a
// mount namespace of its own, so nothing is mounted, rebooted or set on
// the host.
type probe struct {
	name string
	want verdict
	call func(dir string) unix.Errno
}

// verdict is what the Strict policy does to a probe.
type verdict int

const (
	allowed verdict = iota // as without a filter
	denied                 // EPERM in Strict, as without a filter in Devmode
	enosys                 // ENOSYS in both modes
)

func probes() []probe {
	list := []probe{
		{"file-io", allowed, fileIO},
		{"mkdirat", allowed, func(dir string) unix.Errno {
			return errnoOf(unix.Mkdirat(unix.AT_FDCWD, filepath.Join(dir, "at"), 0o755))
		}},
		{"getpid", allowed, func(string) unix.Errno { return raw(unix.SYS_GETPID) }},
		{"fork-exec", allowed, func(string) unix.Errno { return errnoOf(exec.Command("/bin/true").Run()) }},
		{"personality-query", allowed, func(string) unix.Errno { return raw(unix.SYS_PERSONALITY, 0xffffffff) }},
		{"ioctl-fionread", allowed, func(string) unix.Errno {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				return errnoOf(err)
			}
			defer unix.Close(p[0])
			defer unix.Close(p[1])
			_, err := unix.IoctlGetInt(p[0], unix.TIOCINQ) // FIONREAD
			return errnoOf(err)
		}},
		{"mount", denied, func(dir string) unix.Errno {
			return errnoOf(unix.Mount("none", dir, "paddock-no-such-fs", 0, ""))
		}},
		{"umount2", denied, func(dir string) unix.Errno {
			return errnoOf(unix.Unmount(filepath.Join(dir, "nowhere"), 0))
		}},
		{"pivot_root", denied, func(dir string) unix.Errno {
			return errnoOf(unix.PivotRoot(filepath.Join(dir, "nowhere"), filepath.Join(dir, "nowhere")))
		}},
		{"chroot", denied, func(dir string) unix.Errno { return errnoOf(unix.Chroot(filepath.Join(dir, "nowhere"))) }},
		// A multi-threaded process cannot make a user namespace: EINVAL.
		{"unshare-user", denied, func(string) unix.Errno { return errnoOf(unix.Unshare(unix.CLONE_NEWUSER)) }},
		{"setns", denied, func(string) unix.Errno { return errnoOf(unix.Setns(-1, 0)) }},
		// CLONE_NEWUSER with CLONE_FS is refused by the kernel (EINVAL)
		// before any process is made.
		{"clone-newuser", denied, func(string) unix.Errno {
			return raw(unix.SYS_CLONE, unix.CLONE_NEWUSER|unix.CLONE_FS)
		}},
		{"keyctl", denied, func(string) unix.Errno { return raw(unix.SYS_KEYCTL, 0xffff) }},
		{"bpf", denied, func(string) unix.Errno { return raw(unix.SYS_BPF, 0xffff) }},
		{"ptrace", denied, func(string) unix.Errno { return raw(unix.SYS_PTRACE, unix.PTRACE_ATTACH, 0x3fffffff) }},
		{"process_vm_readv", denied, func(string) unix.Errno {
			return raw(unix.SYS_PROCESS_VM_READV, 0x3fffffff)
		}},
		{"reboot", denied, func(string) unix.Errno { return raw(unix.SYS_REBOOT, 0, 0, 0) }}, // bad magic
		{"clock_settime", denied, func(string) unix.Errno {
			var ts unix.Timespec
			return errnoOf(unix.ClockSettime(0x7fff, &ts)) // no such clock
		}},
		{"init_module", denied, func(string) unix.Errno { return raw(unix.SYS_INIT_MODULE, 0, 0, 0) }},
		{"finit_module", denied, func(string) unix.Errno { return raw(unix.SYS_FINIT_MODULE, ^uintptr(0), 0, 0) }},
		{"kexec_load", denied, func(string) unix.Errno {
			// Too many segments and unknown flags: never loads or
			// unloads a kernel.
			return raw(unix.SYS_KEXEC_LOAD, 0, 1000, 0, 0xdead0000)
		}},
		{"acct", denied, func(dir string) unix.Errno { return errnoOf(unix.Acct(filepath.Join(dir, "nowhere"))) }},
		{"swapon", denied, func(dir string) unix.Errno {
			p, _ := unix.BytePtrFromString(filepath.Join(dir, "nowhere"))
			return raw(unix.SYS_SWAPON, uintptrOf(p), 0)
		}},
		{"perf_event_open", denied, func(string) unix.Errno { return raw(unix.SYS_PERF_EVENT_OPEN, 0, 0, ^uintptr(0), ^uintptr(0), 0) }},
		{"open_by_handle_at", denied, func(string) unix.Errno { return raw(unix.SYS_OPEN_BY_HANDLE_AT, ^uintptr(0), 0, 0) }},
		{"userfaultfd", denied, func(string) unix.Errno { return raw(unix.SYS_USERFAULTFD, 0xffff0000) }},
		{"mknodat", denied, func(dir string) unix.Errno {
			return errnoOf(unix.Mknodat(unix.AT_FDCWD, filepath.Join(dir, "nowhere", "fifo"), unix.S_IFIFO|0o600, 0))
		}},
		// On /dev/null, TIOCSTI fails with ENOTTY and injects nothing.
		{"ioctl-tiocsti", denied, func(string) unix.Errno { return ioctlDevNull(unix.TIOCSTI) }},
		{"ioctl-tiocsti-high-bits", denied, func(string) unix.Errno { return ioctlDevNull(1<<32 | unix.TIOCSTI) }},
		// Answered ENOSYS in both modes, so that libc falls back to
		// clone, whose flags seccomp can read. Without a filter: EINVAL
		// (no arguments).
		{"clone3", enosys, func(string) unix.Errno { return raw(unix.SYS_CLONE3, 0, 0) }},
		// Last: it changes how this child runs programs.
		{"personality-no-aslr", denied, func(string) unix.Errno { return raw(unix.SYS_PERSONALITY, addrNoRandomize) }},
	}
	return append(list, archProbes()...)
}

// fileIO creates, writes and reads back a file.
func fileIO(dir string) unix.Errno {
	path := filepath.Join(dir, "file")
	if err := os.WriteFile(path, []byte("paddock"), 0o600); err != nil {
		return errnoOf(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		return errnoOf(err)
	}
	if string(got) != "paddock" {
		return unix.EIO
	}
	return 0
}

func ioctlDevNull(req uint64) unix.Errno {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return errnoOf(err)
	}
	defer unix.Close(fd)
	var c byte
	return raw(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptrOf(&c))
}

const addrNoRandomize = 0x0040000 // personality(2) ADDR_NO_RANDOMIZE

func uintptrOf[T any](p *T) uintptr { return uintptr(unsafe.Pointer(p)) }

func raw(nr uintptr, args ...uintptr) unix.Errno {
	var a [6]uintptr
	copy(a[:], args)
	_, _, errno := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	return errno
}

// errnoOf returns the errno inside err, 0 for nil, and 255 for an error
// without one.
func errnoOf(err error) unix.Errno {
	if err == nil {
		return 0
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 255
}

// runProbes runs the probes in a child under profile ("" for none) and
// returns each one's errno.
func runProbes(t *testing.T, profile string) map[string]unix.Errno {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=probe", profileEnv+"="+profile, dirEnv+"="+t.TempDir())
	// A mount namespace of its own, private: whatever seccomp lets
	// through stays in the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// A kill by SIGSYS shows here: denials must be errors, not kills.
		t.Fatalf("probe child: %v: %s", err, stderr.Bytes())
	}
	got := map[string]unix.Errno{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, num, _ := strings.Cut(sc.Text(), " ")
		n, err := strconv.Atoi(num)
		if err != nil {
			t.Fatalf("probe child printed %q", sc.Text())
		}
		got[name] = unix.Errno(n)
	}
	return got
}

func requireRoot(t testing.TB) {
	t.Helper()
	testutil.NeedRoot(t, "load seccomp filters in a private mount namespace")
}

func compileTo(t testing.TB, p Policy) string {
	t.Helper()
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "profile.bpf")
	if err := WriteProfile(path, prog); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadEnforces(t *testing.T) {
	requireRoot(t)
	baseline := runProbes(t, "")
	strict := runProbes(t, compileTo(t, Policy{Mode: Strict}))
	devmode := runProbes(t, compileTo(t, Policy{Mode: Devmode}))
	for _, p := range probes() {
		t.Run(p.name, func(t *testing.T) {
			base, s, d := baseline[p.name], strict[p.name], devmode[p.name]
			t.Logf("without filter: %v (%d); strict: %v; devmode: %v", base, int(base), s, d)
			wantStrict, wantDevmode := base, base
			switch p.want {
			case denied:
				wantStrict = unix.EPERM
				if base == unix.EPERM {
					t.Logf("the kernel itself answers EPERM here: this probe cannot tell the modes apart")
				}
			case enosys:
				wantStrict, wantDevmode = unix.ENOSYS, unix.ENOSYS
			case allowed:
				if base != 0 {
					t.Errorf("without filter: got %v, want success", base)
				}
			}
			if s != wantStrict {
				t.Errorf("strict: got %v, want %v", s, wantStrict)
			}
			// Devmode only logs: the kernel answers as without a filter.
			if d != wantDevmode {
				t.Errorf("devmode: got %v, want %v", d, wantDevmode)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		prog []byte
	}{
		{"empty", nil},
		{"partial", make([]byte, 12)},
		{"too long", make([]byte, 8*(bpfMaxInsns+1))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Load(tc.prog); err == nil {
				t.Errorf("got no error, want one")
			}
		})
	}
	if err := LoadFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("LoadFile of a missing file: got no error, want one")
	}
}

// BenchmarkLoad measures LoadFile (read and seccomp(2)) in child
// processes, reported as load-ns/op; ns/op includes starting the child.
func BenchmarkLoad(b *testing.B) {
	requireRoot(b)
	path := compileTo(b, Policy{})
	var total time.Duration
	n := 0
	for b.Loop() {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=load", profileEnv+"="+path)
		out, err := cmd.Output()
		if err != nil {
			b.Fatal(err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		total += time.Duration(ns)
		n++
	}
	b.ReportMetric(float64(total.Nanoseconds())/float64(n), "load-ns/op")
}
