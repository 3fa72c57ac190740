package denials

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/cli"
	"paddock.dev/paddock/internal/testutil"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Denial
		ok   bool
	}{
		{
			name: "kmsg seccomp errno",
			line: `5,653,1008438884,-;audit: type=1326 audit(1795731409.105:2): auid=4294967295 uid=0 gid=0 ses=4294967295 pid=7118 comm="x" exe="/apps/hello/1/bin/x" sig=0 arch=c000003e syscall=169 compat=0 ip=0x40866e code=0x50000`,
			want: Denial{Time: time.Unix(1795731409, 105e6).UTC(), Kind: "seccomp", Action: "errno", Label: "/apps/hello/1/bin/x", PID: 7118, Comm: "x", Exe: "/apps/hello/1/bin/x", Syscall: "reboot", SyscallNr: 169, Arch: "x86_64"},
			ok:   true,
		},
		{
			name: "dmesg seccomp log",
			line: `[ 1008.438890] audit: type=1326 audit(1795731409.105:3): pid=7118 comm="x" exe="/apps/hello/1/bin/x" sig=0 arch=c000003e syscall=165 compat=0 ip=0x40866e code=0x7ffc0000`,
			want: Denial{Time: time.Unix(1795731409, 105e6).UTC(), Kind: "seccomp", Action: "log", Label: "/apps/hello/1/bin/x", PID: 7118, Comm: "x", Exe: "/apps/hello/1/bin/x", Syscall: "mount", SyscallNr: 165, Arch: "x86_64"},
			ok:   true,
		},
		{
			name: "journal seccomp aarch64 with subj",
			line: `Nov 23 12:00:01 device kernel: audit: type=1326 audit(1795731412.000:9): subj=paddock.other.serve (enforce) pid=7200 comm="serve" exe="/apps/other/2/bin/serve" sig=0 arch=c00000b7 syscall=198 compat=0 ip=0xffff8a2b1c code=0x50000`,
			want: Denial{Time: time.Unix(1795731412, 0).UTC(), Kind: "seccomp", Action: "errno", Label: "paddock.other.serve", PID: 7200, Comm: "serve", Exe: "/apps/other/2/bin/serve", Syscall: "socket", SyscallNr: 198, Arch: "aarch64"},
			ok:   true,
		},
		{
			name: "auditd seccomp arm",
			line: `type=SECCOMP msg=audit(1795731414.500:21): pid=7301 comm="hello" exe="/apps/hello/1/bin/hello" sig=0 arch=40000028 syscall=88 compat=0 ip=0xb6f0 code=0x50000`,
			want: Denial{Time: time.Unix(1795731414, 500e6).UTC(), Kind: "seccomp", Action: "errno", Label: "/apps/hello/1/bin/hello", PID: 7301, Comm: "hello", Exe: "/apps/hello/1/bin/hello", Syscall: "reboot", SyscallNr: 88, Arch: "arm"},
			ok:   true,
		},
		{
			name: "unknown syscall number",
			line: `audit: type=1326 audit(1.000:1): pid=1 comm="x" exe="/apps/a/1/x" arch=c000003e syscall=4000 code=0x50000`,
			want: Denial{Time: time.Unix(1, 0).UTC(), Kind: "seccomp", Action: "errno", Label: "/apps/a/1/x", PID: 1, Comm: "x", Exe: "/apps/a/1/x", Syscall: "syscall 4000", SyscallNr: 4000, Arch: "x86_64"},
			ok:   true,
		},
		{
			name: "seccomp allow is not a denial",
			line: `audit: type=1326 audit(1.000:1): pid=1 comm="x" arch=c000003e syscall=1 code=0x7fff0000`,
		},
		{
			name: "apparmor file",
			line: `audit: type=1400 audit(1795731411.250:7): apparmor="DENIED" operation="open" class="file" profile="paddock.hello.hello" name="/etc/shadow" pid=123 comm="cat" requested_mask="r" denied_mask="r" fsuid=0 ouid=0`,
			want: Denial{Time: time.Unix(1795731411, 250e6).UTC(), Kind: "apparmor", Action: "DENIED", Label: "paddock.hello.hello", PID: 123, Comm: "cat", Path: "/etc/shadow", Operation: "open", Requested: "r"},
			ok:   true,
		},
		{
			name: "apparmor hex-encoded name and comm",
			line: `[ 1012.1] audit: type=1400 audit(1795731415.000:22): apparmor="DENIED" operation="open" class="file" profile="paddock.hello.hello" name=2F746D702F612062 pid=7302 comm=68656C6C6F requested_mask="r" denied_mask="r"`,
			want: Denial{Time: time.Unix(1795731415, 0).UTC(), Kind: "apparmor", Action: "DENIED", Label: "paddock.hello.hello", PID: 7302, Comm: "hello", Path: "/tmp/a b", Operation: "open", Requested: "r"},
			ok:   true,
		},
		{
			name: "apparmor complain mode",
			line: `type=AVC msg=audit(1795731414.123:20): apparmor="ALLOWED" operation="exec" profile="paddock.hello.hello" name="/usr/bin/sudo" pid=7300 comm="sh" requested_mask="x" denied_mask="x"`,
			want: Denial{Time: time.Unix(1795731414, 123e6).UTC(), Kind: "apparmor", Action: "ALLOWED", Label: "paddock.hello.hello", PID: 7300, Comm: "sh", Path: "/usr/bin/sudo", Operation: "exec", Requested: "x"},
			ok:   true,
		},
		{
			name: "apparmor network",
			line: `audit: type=1400 audit(1795731415.100:23): apparmor="DENIED" operation="create" class="net" profile="paddock.hello.hello" pid=7303 comm="curl" family="inet" sock_type="stream" protocol=6 requested_mask="create" denied_mask="create"`,
			want: Denial{Time: time.Unix(1795731415, 100e6).UTC(), Kind: "apparmor", Action: "DENIED", Label: "paddock.hello.hello", PID: 7303, Comm: "curl", Operation: "create", Requested: "create", Family: "inet", SockType: "stream"},
			ok:   true,
		},
		{
			name: "apparmor status is not a denial",
			line: `audit: type=1400 audit(1.000:10): apparmor="STATUS" operation="profile_load" profile="unconfined" name="paddock.hello.hello" pid=1 comm="apparmor_parser"`,
		},
		{name: "kmsg continuation", line: " SUBSYSTEM=audit"},
		{name: "other kernel line", line: "6,654,1008438890,-;loop0: detected capacity change from 0 to 8"},
		{name: "apparmor= outside an AVC record", line: `kernel: something apparmor="DENIED" name="/x"`},
		{name: "truncated", line: "audit: type=1326 audit("},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Parse(tt.line)
			if ok != tt.ok {
				t.Fatalf("got ok=%v, want %v (%+v)", ok, tt.ok, got)
			}
			if ok && got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSyscallName(t *testing.T) {
	tests := []struct {
		arch uint32
		nr   int
		want string
	}{
		{0xc000003e, 0, "read"},
		{0xc000003e, 169, "reboot"},
		{0xc000003e, 83, "mkdir"},
		{0xc000003e, 258, "mkdirat"},
		{0xc000003e, 227, "clock_settime"},
		{0xc00000b7, 142, "reboot"},
		{0xc00000b7, 40, "mount"},
		{0xc00000b7, 200, "bind"},
		{0x40000028, 21, "mount"},
		{0x40000028, 281, "socket"},
		{0x40000028, 9999, "syscall 9999"},
		{0xdeadbeef, 1, "syscall 1"},
		{0xc000003e, -1, "syscall -1"},
	}
	for _, tt := range tests {
		if got := SyscallName(tt.arch, tt.nr); got != tt.want {
			t.Errorf("SyscallName(%#x, %d) = %q, want %q", tt.arch, tt.nr, got, tt.want)
		}
	}
}

func TestHint(t *testing.T) {
	aa := func(path string) Denial {
		return Denial{Kind: "apparmor", Label: "paddock.hello.hello", Path: path, Operation: "open", Requested: "rw"}
	}
	sc := func(name string) Denial {
		return Denial{Kind: "seccomp", Label: "/apps/hello/1/bin/hello", Exe: "/apps/hello/1/bin/hello", Syscall: name}
	}
	tests := []struct {
		name     string
		d        Denial
		plug     string
		explains string
	}{
		{"ttyS", aa("/dev/ttyS0"), "serial-port", "paddock connect hello:serial-port"},
		{"ttyUSB", aa("/dev/ttyUSB1"), "serial-port", "serial-port"},
		{"ttyACM", aa("/dev/ttyACM0"), "serial-port", "serial-port"},
		{"gpio sysfs", aa("/sys/class/gpio/export"), "gpio", "gpio"},
		{"gpio sysfs deep", aa("/sys/class/gpio/gpio17/value"), "gpio", "gpio"},
		{"gpiochip", aa("/dev/gpiochip0"), "gpio", "gpio"},
		{"i2c", aa("/dev/i2c-1"), "i2c", "i2c"},
		{"spi", aa("/dev/spidev0.0"), "spi", "spi"},
		{"pwm", aa("/sys/class/pwm/pwmchip0/export"), "pwm", "pwm"},
		{"other app data", aa("/var/lib/paddock/data/other/1/secret"), "", "only its own data"},
		{"proc sys write", aa("/proc/sys/net/ipv4/ip_forward"), "", "kernel settings"},
		{"unknown device", aa("/dev/video0"), "", "custom-device"},
		{"unknown file", aa("/etc/shadow"), "", "no interface"},
		{"apparmor inet", Denial{Kind: "apparmor", Label: "paddock.hello.hello", Operation: "create", Family: "inet", SockType: "stream"}, "network", "network"},
		{"apparmor bind", Denial{Kind: "apparmor", Label: "paddock.hello.hello", Operation: "bind", Family: "inet6"}, "network-bind", "network-bind"},
		{"cap net_bind_service", Denial{Kind: "apparmor", Label: "paddock.hello.hello", Operation: "capable", Capability: "net_bind_service"}, "network-bind", "network-bind"},
		{"cap sys_admin", Denial{Kind: "apparmor", Label: "paddock.hello.hello", Operation: "capable", Capability: "sys_admin"}, "", "CAP_SYS_ADMIN"},
		{"socket", sc("socket"), "network", "paddock connect hello:network"},
		{"connect", sc("connect"), "network", "network"},
		{"bind", sc("bind"), "network-bind", "network-bind"},
		{"listen", sc("listen"), "network-bind", "network-bind"},
		{"reboot", sc("reboot"), "", "paddock ctl reboot"},
		{"mount", sc("mount"), "", "no interface allows mount"},
		{"clock_settime", sc("clock_settime"), "", "clock"},
		{"init_module", sc("init_module"), "", "kernel modules"},
		{"unknown syscall", sc("syscall 4000"), "", "no interface"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testCatalog.Hint(tt.d); got != tt.plug {
				t.Errorf("Hint = %q, want %q", got, tt.plug)
			}
			if got := testCatalog.Explain(tt.d); !strings.Contains(got, tt.explains) {
				t.Errorf("Explain = %q, want it to mention %q", got, tt.explains)
			}
		})
	}
}

func TestReadKernelLog(t *testing.T) {
	tests := []struct {
		app    string
		labels []string
	}{
		{"hello", []string{"/apps/hello/1/bin/hello", "/apps/hello/1/bin/hello", "paddock.hello.hello"}},
		{"other", []string{"paddock.other.serve", "paddock.other.serve"}},
		{"", []string{"/apps/hello/1/bin/hello", "/apps/hello/1/bin/hello", "paddock.hello.hello", "paddock.other.serve", "paddock.other.serve"}},
		{"hell", nil}, // a prefix of another app's name is another app
		{"nope", nil},
	}
	for _, tt := range tests {
		t.Run("app="+tt.app, func(t *testing.T) {
			f, err := os.Open("testdata/kernel.log")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ds, err := ReadKernelLog(f, tt.app)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.Label)
			}
			if strings.Join(got, " ") != strings.Join(tt.labels, " ") {
				t.Errorf("got labels %q, want %q", got, tt.labels)
			}
		})
	}
}

func TestRunFile(t *testing.T) {
	var out, errb bytes.Buffer
	if err := testCatalog.run([]string{"hello", "--file", "testdata/kernel.log"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"2026-11-26 22:16:49 /apps/hello/1/bin/hello seccomp errno reboot (x86_64 169) by hello[7118]: no interface allows reboot",
		"2026-11-26 22:16:49 /apps/hello/1/bin/hello seccomp log mount (x86_64 165) by hello[7118]: no interface allows mount",
		"2026-11-26 22:16:51 paddock.hello.hello apparmor denied open /dev/ttyUSB0 (wr) by hello[7120]: the serial-port interface allows this",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d: got %q, want prefix %q", i, lines[i], want[i])
		}
	}
}

func TestRunJSON(t *testing.T) {
	var out bytes.Buffer
	if err := testCatalog.run([]string{"--json", "--file", "testdata/kernel.log", "other"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Kind, Label, Syscall, Path, Plug, Explanation string
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if len(got) != 2 || got[1].Syscall != "socket" || got[1].Plug != "network" || got[0].Path != "/etc/shadow" || got[0].Explanation == "" {
		t.Errorf("got %+v, want the /etc/shadow and socket denials of other", got)
	}
	out.Reset()
	if err := testCatalog.run([]string{"--json", "--file", "testdata/kernel.log", "nope"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(out.String()); s != "[]" {
		t.Errorf("got %q for no denials, want []", s)
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		args []string
		want error
	}{
		{[]string{"a", "b"}, cli.ErrUsage},
		{[]string{"--bogus"}, cli.ErrUsage},
		{[]string{"--help"}, flag.ErrHelp},
		{[]string{"--file", filepath.Join("testdata", "missing")}, os.ErrNotExist},
	}
	for _, tt := range tests {
		if err := testCatalog.run(tt.args, new(bytes.Buffer), new(bytes.Buffer)); !errors.Is(err, tt.want) {
			t.Errorf("run(%q) = %v, want %v", tt.args, err, tt.want)
		}
	}
}

func TestRunKmsg(t *testing.T) {
	// A regular file stands in for /dev/kmsg: reads end at EOF, not EAGAIN.
	testutil.Replace(t, &kmsgPath, "testdata/kernel.log")
	var out bytes.Buffer
	if err := testCatalog.run([]string{"other"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("got %d lines, want 2:\n%s", n, out.String())
	}
}

func TestReadRealKmsg(t *testing.T) {
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		t.Skip("skipping: no /dev/kmsg")
	}
	b, err := readKmsg("/dev/kmsg")
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Error("got an empty kernel log")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`audit: type=1400 audit(1.000:1): apparmor="DENIED" operation="open" profile="paddock.a.b" name="/x" pid=1 comm="c" requested_mask="r"`)
	f.Fuzz(func(t *testing.T, line string) {
		d, ok := Parse(line)
		if !ok {
			if d != (Denial{}) {
				t.Errorf("not ok but got %+v", d)
			}
			return
		}
		if d.Kind != "seccomp" && d.Kind != "apparmor" {
			t.Errorf("got kind %q", d.Kind)
		}
		_ = testCatalog.Hint(d)
		_ = testCatalog.Explain(d)
		_ = testCatalog.Format(d)
	})
}

// testCatalog has the shape of the agent's interface catalog (the agent's
// policy tests check the real one gives these hints too).
var testCatalog = Catalog{
	{Plug: "gpio", Paths: []string{"/dev/gpiochip*", "/sys/class/gpio/", "/sys/devices/platform/*/gpio/"}},
	{Plug: "i2c", Paths: []string{"/dev/i2c-*", "/sys/class/i2c-dev/"}},
	{Plug: "network", Families: []string{"inet", "inet6"}, Syscalls: []string{"socket", "connect", "sendto"}},
	{Plug: "network-bind", Families: []string{"inet", "inet6"}, Operations: []string{"bind", "listen", "accept"},
		Capabilities: []string{"net_bind_service"}, Syscalls: []string{"bind", "listen", "accept", "accept4"}},
	{Plug: "pwm", Paths: []string{"/sys/class/pwm/"}},
	{Plug: "serial-port", Paths: []string{"/dev/ttyS*", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/ttyAMA*"}},
	{Plug: "spi", Paths: []string{"/dev/spidev*"}},
}
