package policy

import (
	"os"
	"testing"

	"paddock.dev/paddock/confine/apparmor"
	"paddock.dev/paddock/confine/launch"
	"paddock.dev/paddock/confine/profiles"
	"paddock.dev/paddock/confine/seccomp"
	"paddock.dev/paddock/gadget"
	"paddock.dev/paddock/gadget/interfaces"
	"paddock.dev/paddock/internal/dirs"
	"paddock.dev/paddock/internal/dirs/dirstest"
	"paddock.dev/paddock/ota/manifest"
)

// BenchmarkPolicy5Interfaces measures what a connection costs a command
// with 5 connected interfaces (issue 11's budget: under 50 ms for
// seccomp, under 500 ms with apparmor_parser): resolving the policy,
// compiling its seccomp program, and generating and compiling its
// AppArmor profile.
func BenchmarkPolicy5Interfaces(b *testing.B) {
	dirstest.SetRoot(b)
	if err := os.Symlink("/dev", dirs.Root+"/dev"); err != nil {
		b.Fatal(err)
	}
	m, err := manifest.Parse([]byte(`name: a
version: "1"
apps:
  a:
    command: bin/a
    plugs: [network, hardware-observe, network-observe, serial-port, i2c]
`), manifest.Path)
	if err != nil {
		b.Fatal(err)
	}
	conns := append(AutoConnections(m),
		Connection{Plug: "serial-port", Interface: "serial-port", Gadget: &gadget.Slot{Interface: "serial-port", SlotAttrs: interfaces.SlotAttrs{Path: "/dev/ttyS0"}}},
		Connection{Plug: "i2c", Interface: "i2c", Gadget: &gadget.Slot{Interface: "i2c", SlotAttrs: interfaces.SlotAttrs{Path: "/dev/i2c-1"}}})
	user := launch.User{UID: 70001, GID: 70001}
	resolve := func() *profiles.Policy {
		pols, err := Resolve(m, 1, user, conns)
		if err != nil || len(pols[0].Connections) != 5 {
			b.Fatalf("got %v, want 5 connections", err)
		}
		return pols[0]
	}
	b.Run("resolve", func(b *testing.B) {
		for range b.N {
			resolve()
		}
	})
	b.Run("resolve+seccomp", func(b *testing.B) {
		for range b.N {
			p := resolve()
			if _, err := seccomp.Compile(seccomp.Policy{Arch: "amd64", Extra: p.Seccomp.Extra}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("resolve+apparmor_parser", func(b *testing.B) {
		if _, err := apparmor.Compile("profile x {}", ""); err != nil {
			b.Skipf("skipping: %v", err)
		}
		for range b.N {
			p := resolve()
			text, err := apparmor.Generate(apparmor.Profile{Label: "paddock.a.a", AppDir: "/apps/a/1", DataDir: "/var/lib/paddock/data/a/1",
				CommonDir: "/var/lib/paddock/data/a/common", Snippets: p.AppArmor.Snippets})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := apparmor.Compile(text, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}
