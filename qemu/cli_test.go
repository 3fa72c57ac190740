package qemu

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/testutil"
)

// imageDir makes DIR/disk.img with a kernel and initramfs next to it.
func imageDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"disk.img", "disk.vmlinux", "disk.initrd.img"} {
		testutil.WriteFile(t, filepath.Join(dir, n), "")
	}
	return filepath.Join(dir, "disk.img")
}

func TestRunPrint(t *testing.T) {
	disk := imageDir(t)
	base := strings.TrimSuffix(disk, ".img")
	tests := []struct {
		name string
		args []string
		want []string // in the printed line
	}{{
		name: "defaults next to the image",
		args: []string{"run", disk, "--print"},
		want: []string{"qemu-system-x86_64 -accel tcg -M q35 -m 512 -smp 1 ", "-kernel " + base + ".vmlinux -initrd " + base + ".initrd.img",
			"-append 'console=ttyS0 quiet panic=-1 no_timer_check' -drive file=" + disk + ",if=virtio,format=raw"},
	}, {
		name: "flags after the image, a command",
		args: []string{"run", disk, "--print", "--mem", "1024", "--forward", "8022:22", "--forward", "8080:80", "--kernel", "k", "--", "echo hi"},
		want: []string{"-m 1024", "-kernel k ", "paddock.cmd=ZWNobyBoaQ==",
			"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:8022-:22,hostfwd=tcp:127.0.0.1:8080-:80"},
	}, {
		name: "arm64",
		args: []string{"run", "--arch", "arm64", disk, "--print", "--guest-forward", "1883:41883"},
		want: []string{"qemu-system-aarch64", "console=ttyAMA0", "guestfwd=tcp:10.0.2.100:1883-tcp:127.0.0.1:41883,,reconnect=1", "virtio-net-device"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := Run(tt.args, &out, &errOut); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("got %s, want it to contain %q", out.String(), w)
				}
			}
		})
	}
}

func TestRunUsage(t *testing.T) {
	disk := imageDir(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", nil, "subcommand"},
		{"unknown subcommand", []string{"walk"}, `"walk"`},
		{"no disk", []string{"run"}, "needs a disk image"},
		{"bad forward", []string{"run", disk, "--forward", "22"}, "PORT:PORT"},
		{"bad forward port", []string{"run", disk, "--forward", "0:22"}, "PORT:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(tt.args, &bytes.Buffer{}, &bytes.Buffer{})
			if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}

func TestRunMissingFiles(t *testing.T) {
	t.Setenv("PADDOCK_CACHE", t.TempDir())
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	os.WriteFile(disk, nil, 0o644)
	err := Run([]string{"run", disk, "--print"}, &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), "--kernel") {
		t.Errorf("got %v, want ErrNoKernel naming --kernel", err)
	}
	err = Run([]string{"run", disk, "--print", "--kernel", "k"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--initrd") {
		t.Errorf("got %v, want an error naming --initrd", err)
	}
	err = Run([]string{"run", filepath.Join(dir, "none.img")}, &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want ErrNotExist", err)
	}
}

func TestFindKernel(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("PADDOCK_CACHE", cache)
	dir := filepath.Join(cache, "kernels", "amd64", "boot")
	os.MkdirAll(dir, 0o755)
	for _, n := range []string{"vmlinuz-6.1.0-9-amd64", "vmlinux-6.1.0-8-amd64", "vmlinux-6.1.0-9-amd64"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
	}
	got, err := FindKernel(AMD64)
	if want := filepath.Join(dir, "vmlinux-6.1.0-9-amd64"); err != nil || got != want {
		t.Errorf("got %q, %v, want %q", got, err, want)
	}
	// kernel.sh's .complete names the version to use.
	os.WriteFile(filepath.Join(cache, "kernels", "amd64", ".complete"), []byte("6.1.0-8-amd64\n"), 0o644)
	got, err = FindKernel(AMD64)
	if want := filepath.Join(dir, "vmlinux-6.1.0-8-amd64"); err != nil || got != want {
		t.Errorf("got %q, %v, want %q", got, err, want)
	}
	if _, err := FindKernel(ARM64); !errors.Is(err, ErrNoKernel) {
		t.Errorf("got %v for arm64, want ErrNoKernel", err)
	}
}

func TestRunCommandExitCode(t *testing.T) {
	c := bootConfig(t)
	t.Parallel()
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	os.WriteFile(disk, make([]byte, 1<<20), 0o644)
	var out, errOut bytes.Buffer
	err := Run([]string{"run", disk, "--kernel", c.Kernel, "--initrd", c.Initrd, "--", "echo", "from the cli;", "exit 7"}, &out, &errOut)
	var code cli.ExitCode
	if !errors.As(err, &code) || code != 7 {
		t.Errorf("got %v, want exit code 7", err)
	}
	if got, want := out.String(), "from the cli\n"; got != want {
		t.Errorf("got output %q, want %q", got, want)
	}
}
