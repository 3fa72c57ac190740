package launch

import (
	"os"
	"path/filepath"
	"testing"
)

// TestResolvSource checks what a sandbox with the host's network shows for
// /etc/resolv.conf to resolve. The bug it pins: the base's /etc/resolv.conf
// links to the agent's file on /run, which a sandbox's own /run hid, so an
// app with the network plug could not resolve a name.
func TestResolvSource(t *testing.T) {
	tests := []struct {
		name  string
		link  string   // the target of etc/resolv.conf; "" for a regular file
		files []string // files made below the root
		dirs  []string // folders made below the root
		want  string   // below the root, "" for nothing
		isDir bool
	}{
		{name: "the agent's folder", link: "/run/paddock-net/resolv.conf", files: []string{"run/paddock-net/resolv.conf"},
			want: "run/paddock-net", isDir: true},
		{name: "the agent's folder before its file", link: "/run/paddock-net/resolv.conf", dirs: []string{"run/paddock-net"},
			want: "run/paddock-net", isDir: true},
		{name: "the agent's folder missing", link: "/run/paddock-net/resolv.conf"},
		{name: "systemd-resolved's file, relative", link: "../run/systemd/resolve/stub-resolv.conf",
			files: []string{"run/systemd/resolve/stub-resolv.conf"}, want: "run/systemd/resolve/stub-resolv.conf"},
		{name: "systemd-resolved's file, absolute", link: "/run/systemd/resolve/resolv.conf",
			files: []string{"run/systemd/resolve/resolv.conf"}, want: "run/systemd/resolve/resolv.conf"},
		{name: "a target missing", link: "/run/systemd/resolve/stub-resolv.conf"},
		{name: "a target that is a folder", link: "/run/resolvconf", dirs: []string{"run/resolvconf"}},
		{name: "a regular file", files: []string{"etc/resolv.conf"}},
		{name: "no resolv.conf"},
		{name: "a target outside /run", link: "/usr/lib/resolv.conf", files: []string{"usr/lib/resolv.conf"}},
		{name: "a target out of /run by ..", link: "/run/../etc/hosts", files: []string{"etc/hosts"}},
		{name: "/run itself", link: "/run", dirs: []string{"run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range tt.files {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("nameserver 10.0.2.3\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tt.link != "" {
				if err := os.Symlink(tt.link, filepath.Join(root, "etc/resolv.conf")); err != nil {
					t.Fatal(err)
				}
			}
			src, isDir := resolvSource(root)
			want := ""
			if tt.want != "" {
				want = filepath.Join(root, tt.want)
			}
			if src != want || isDir != tt.isDir {
				t.Errorf("got %q (folder %v), want %q (folder %v)", src, isDir, want, tt.isDir)
			}
		})
	}
}
