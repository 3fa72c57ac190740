package cross

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// binPath returns the path of t's binary, skipping the test if it is missing.
func binPath(t *testing.T, tg Target) string {
	t.Helper()
	path := filepath.Join("..", "bin", "paddock-linux-"+tg.Name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("run make cross: %s is missing", filepath.Join("bin", "paddock-linux-"+tg.Name))
	}
	return path
}

func TestELF(t *testing.T) {
	for _, tg := range Targets {
		t.Run(tg.Name, func(t *testing.T) {
			if err := Check(binPath(t, tg), tg); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestCheckRejects makes sure Check can fail: each binary fails as any
// other target, a source file is no ELF, and a dynamic /bin/sh has a
// program interpreter.
func TestCheckRejects(t *testing.T) {
	for _, tg := range Targets {
		for _, other := range Targets {
			if other.Name == tg.Name {
				continue
			}
			path := filepath.Join("..", "bin", "paddock-linux-"+tg.Name)
			if _, err := os.Stat(path); err != nil {
				continue
			}
			if err := Check(path, other); err == nil {
				t.Errorf("Check(%s, %s) passed", path, other.Name)
			}
		}
	}
	if err := Check("cross.go", Targets[0]); err == nil {
		t.Error("Check of a Go source file passed")
	}
	for _, tg := range Targets {
		if tg.GOARCH == runtime.GOARCH {
			if err := Check("/bin/sh", tg); err == nil || !strings.Contains(err.Error(), "PT_INTERP") {
				t.Errorf("Check(/bin/sh) = %v, want a PT_INTERP error", err)
			}
		}
	}
}

// TestHelp runs 'paddock-linux-ARCH help' natively or under qemu-user
// (qemu-user-static or qemu-user: the binaries are static, so either runs
// them; 'CROSS_QEMU=1 make cross' installs one). The help does not need
// seccomp, which qemu-user does not emulate.
func TestHelp(t *testing.T) {
	for _, tg := range Targets {
		t.Run(tg.Name, func(t *testing.T) {
			path := binPath(t, tg)
			var argv []string
			if tg.GOARCH == runtime.GOARCH && runtime.GOOS == "linux" {
				argv = []string{path, "help"}
			} else {
				for _, q := range tg.QEMU {
					if qp, err := exec.LookPath(q); err == nil {
						argv = []string{qp, path, "help"}
						break
					}
				}
				if argv == nil {
					t.Skipf("none of %s installed (qemu-user-static or qemu-user; CROSS_QEMU=1 make cross installs it)", strings.Join(tg.QEMU, ", "))
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Env = append(os.Environ(), "PADDOCK_ROOT="+t.TempDir())
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: %v\nstderr: %s", strings.Join(argv, " "), err, stderr.String())
			}
			for _, want := range []string{"Usage: paddock COMMAND", "install", "daemon", "pack"} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("%s: the usage lacks %q:\n%s", strings.Join(argv, " "), want, stdout.String())
				}
			}
		})
	}
}
