package loopmount

import (
	"reflect"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	text := `22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
36 35 7:3 / /tmp/a\040b/apps/hello/1 ro,nosuid,nodev,relatime - squashfs /dev/loop3 ro,errors=continue
garbage line
40 35 0:50 / /sys/fs/cgroup ro master:1 shared:2 - tmpfs tmpfs ro
`
	want := []Mount{
		{Dir: "/proc", FSType: "proc", Source: "proc", Options: "rw,nosuid,nodev,noexec,relatime"},
		{Dir: "/tmp/a b/apps/hello/1", FSType: "squashfs", Source: "/dev/loop3", Options: "ro,nosuid,nodev,relatime"},
		{Dir: "/sys/fs/cgroup", FSType: "tmpfs", Source: "tmpfs", Options: "ro"},
	}
	if got := parseMountinfo(text); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`a\040b`: "a b", `a\011`: "a\t", `\\x`: `\\x`, `end\04`: `end\04`} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q): got %q, want %q", in, got, want)
		}
	}
}
