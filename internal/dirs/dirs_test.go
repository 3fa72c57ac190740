package dirs

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestSetRootDir(t *testing.T) {
	old := Root
	t.Cleanup(func() { SetRootDir(old) })
	root := t.TempDir()
	SetRootDir(root)
	tests := []struct{ got, want string }{
		{StateFile, filepath.Join(root, "var/lib/paddock/state.json")},
		{TrustedDir, filepath.Join(root, "etc/paddock/trusted")},
		{SocketPath, filepath.Join(root, "run/paddock.sock")},
		{AppDir("hello", "current"), filepath.Join(root, "apps/hello/current")},
		{AppDataDir("hello", "common"), filepath.Join(root, "var/lib/paddock/data/hello/common")},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	SetRootDir("")
	if Root != "/" || StateFile != "/var/lib/paddock/state.json" {
		t.Errorf("empty root: got %q and %q, want / and /var/lib/paddock/state.json", Root, StateFile)
	}
}

// TestRootDirCallback checks that a callback sees the root when it is
// added and every root SetRootDir sets after.
func TestRootDirCallback(t *testing.T) {
	old, oldCallbacks := Root, callbacks
	t.Cleanup(func() { callbacks = oldCallbacks; SetRootDir(old) })
	var seen []string
	AddRootDirCallback(func(root string) { seen = append(seen, root) })
	root := t.TempDir()
	SetRootDir(root)
	SetRootDir("")
	if want := []string{old, root, "/"}; !slices.Equal(seen, want) {
		t.Errorf("got roots %q, want %q", seen, want)
	}
}
