//go:build linux && cgo

package seccomp

import (
	"bytes"
	"runtime"
	"slices"
	"strings"
	"testing"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

func TestCompileArches(t *testing.T) {
	progs := map[string][]byte{}
	for _, arch := range []string{"amd64", "arm64", "armhf", "arm", ""} {
		for _, mode := range []Mode{Strict, Devmode} {
			t.Run(arch+"/"+mode.String(), func(t *testing.T) {
				prog, err := Compile(Policy{Arch: arch, Mode: mode})
				if err != nil {
					t.Fatal(err)
				}
				if err := checkProgram(prog); err != nil {
					t.Fatal(err)
				}
				t.Logf("%d bytes, %d instructions", len(prog), len(prog)/8)
				progs[arch+"/"+mode.String()] = prog
			})
		}
	}
	differ := func(a, b string) {
		t.Helper()
		if progs[a] != nil && bytes.Equal(progs[a], progs[b]) {
			t.Errorf("%s and %s compiled to the same program", a, b)
		}
	}
	same := func(a, b string) {
		t.Helper()
		if !bytes.Equal(progs[a], progs[b]) {
			t.Errorf("%s and %s compiled to different programs", a, b)
		}
	}
	differ("amd64/strict", "arm64/strict")
	differ("amd64/strict", "armhf/strict")
	differ("arm64/strict", "armhf/strict")
	differ("amd64/strict", "amd64/devmode")
	same("arm/strict", "armhf/strict")
	same("/strict", runtime.GOARCH+"/strict")
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Policy
		err  string
	}{
		{"unknown extra", Policy{Arch: "amd64", Extra: []string{"read", "paddock_frobnicate"}}, `unknown system call "paddock_frobnicate"`},
		{"unknown arch", Policy{Arch: "riscv64"}, `architecture "riscv64"`},
		{"unknown mode", Policy{Arch: "amd64", Mode: 9}, "unknown seccomp mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("got %v, want an error with %q", err, tc.err)
			}
		})
	}
}

func TestCompileExtra(t *testing.T) {
	base, err := Compile(Policy{Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		extra   []string
		changed bool
	}{
		{"already allowed", []string{"read", "read"}, false},
		// set_tls exists only on arm: skipped on amd64, not an error.
		{"other arch only", []string{"set_tls"}, false},
		{"device node", []string{"mknodat", "mknod"}, true},
		{"clone outright", []string{"clone"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := Compile(Policy{Arch: "amd64", Extra: tc.extra})
			if err != nil {
				t.Fatal(err)
			}
			if changed := !bytes.Equal(prog, base); changed != tc.changed {
				t.Errorf("got program changed %v, want %v", changed, tc.changed)
			}
		})
	}
}

// TestEveryNameKnown checks that libseccomp knows every name of the policy
// and that each exists on at least one supported architecture, so a typo
// cannot hide behind "skipped on this arch".
func TestEveryNameKnown(t *testing.T) {
	arches := []libseccomp.ScmpArch{libseccomp.ArchAMD64, libseccomp.ArchARM64, libseccomp.ArchARM}
	names := append(DefaultSyscalls(), ioctlCall, cloneCall, clone3Call, personalityCall)
	for _, name := range append(names, neverDefault...) {
		found := slices.ContainsFunc(arches, func(a libseccomp.ScmpArch) bool {
			_, ok, err := resolve(name, a)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			return ok
		})
		if !found {
			t.Errorf("%s exists on none of amd64, arm64, armhf", name)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	for _, arch := range []string{"amd64", "arm64", "armhf"} {
		b.Run(arch, func(b *testing.B) {
			for b.Loop() {
				if _, err := Compile(Policy{Arch: arch, Extra: []string{"mknodat"}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
