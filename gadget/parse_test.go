package gadget

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseFull(t *testing.T) {
	g, err := Parse(readTestdata(t, "full.yaml"), "full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v := g.Volume()
	if v.Name != "board" || v.Schema != SchemaGPT || len(v.Structures) != 6 {
		t.Fatalf("got volume %s %s with %d structures, want board gpt with 6", v.Name, v.Schema, len(v.Structures))
	}
	boot := v.Structure("boot")
	if boot.Filesystem != FilesystemVFAT || boot.GPTType() != TypeShorthands["esp"] || boot.Size != 48<<20 {
		t.Errorf("got boot %+v, want vfat esp 48M", boot)
	}
	if got := boot.Content[0]; *got != (Content{Source: "u-boot.bin", Target: "u-boot.bin"}) {
		t.Errorf("got boot content %+v", got)
	}
	if s := v.Structure("data"); s.Filesystem != FilesystemExt4 || s.Size != 1<<30 {
		t.Errorf("got data %+v, want ext4 1G", s)
	}
	if s := v.Structure("bootenv"); s.Filesystem != FilesystemNone || s.GPTType() != TypeShorthands["linux"] {
		t.Errorf("got bootenv %+v, want none linux", s)
	}
	if s := v.Structure("firmware"); s.Content[0].Image != "firmware.img" || s.Role != "" {
		t.Errorf("got firmware %+v", s)
	}
	if len(g.Slots) != 8 {
		t.Errorf("got %d slots, want 8", len(g.Slots))
	}
	if s := g.Slots["adapter"]; s.USBVendor != "0403" || s.USBProduct != "6001" || s.USBSerial != "A9XK2LQ" || s.Path != "" {
		t.Errorf("got adapter %+v", s)
	}
	if s := g.Slots["led"]; *s.Chip != 0 || *s.Number != 17 {
		t.Errorf("got led %+v", s)
	}
	if s := g.Slots["fan"]; s.Interface != "pwm" || *s.Chip != 0 || *s.Number != 1 {
		t.Errorf("got fan %+v", s)
	}
	if s := g.Slots["modem"]; !reflect.DeepEqual(s.Paths, []string{"/dev/cdc-wdm0", "/dev/ttyUSB2"}) {
		t.Errorf("got modem paths %v", s.Paths)
	}
	want := []Connection{{"hello:serial", "serial1"}, {"thermo:i2c", "sensors"}, {"viewer:media", "camera:pictures"}}
	if !reflect.DeepEqual(g.Connections, want) {
		t.Errorf("got connections %v, want %v", g.Connections, want)
	}
	wantDefaults := map[string]any{"greeting": "hi", "interval": 10, "debug": false,
		"peers": []any{"a", "b"}, "nested": map[string]any{"x": 1}}
	if !reflect.DeepEqual(g.Defaults["hello"], wantDefaults) {
		t.Errorf("got defaults %#v, want %#v", g.Defaults["hello"], wantDefaults)
	}
}

func TestParseMBR(t *testing.T) {
	g, err := Parse(readTestdata(t, "mbr.yaml"), "mbr.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := g.Volume().Structure("boot").MBRType(); got != 0x0C {
		t.Errorf("got MBR type %#x, want 0x0c", got)
	}
}

func TestExamples(t *testing.T) {
	for _, tc := range []struct{ dir, serial string }{
		{"../examples/gadget-amd64", "/dev/ttyS1"},
		{"../examples/gadget-arm64", "/dev/ttyAMA1"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			g, err := ReadDir(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range g.Volume().Structures {
				names = append(names, s.Name)
			}
			if got, want := strings.Join(names, " "), "boot bootenv base-a base-b data"; got != want {
				t.Errorf("got structures %s, want %s", got, want)
			}
			if got := g.Slots["serial1"].Path; got != tc.serial {
				t.Errorf("got serial1 path %s, want %s", got, tc.serial)
			}
		})
	}
}

const minimal = `volumes:
  v:
    structures:
      - {name: boot, role: system-boot, size: 8M}
`

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"empty", "", "g.yaml: gadget.yaml is empty"},
		{"not mapping", "[1]", "g.yaml:1: gadget.yaml must be a mapping of fields, not a list"},
		{"syntax", "volumes: [", "g.yaml:1: invalid YAML"},
		{"two docs", minimal + "---\n{}\n", "must hold a single YAML document"},
		{"unknown top", minimal + "extra: 1\n", "g.yaml:5: extra: unknown field"},
		{"no volumes", "slots: {}\n", "volumes: got 0 volumes, want exactly one"},
		{"two volumes", minimal + "  w:\n    structures: [{name: x, size: 1M}]\n", "got 2 volumes"},
		{"duplicate key", "volumes:\n  v:\n    schema: gpt\n    schema: gpt\n", "g.yaml:4: volumes.v.schema: duplicate key"},
		{"bad schema", "volumes:\n  v:\n    schema: apm\n", "g.yaml:3: volumes.v.schema: unknown schema \"apm\""},
		{"no structures", "volumes:\n  v:\n    schema: gpt\n", "volumes.v.structures: no structures"},
		{"bad size", "volumes:\n  v:\n    structures:\n      - {name: a, size: 64X}\n", "g.yaml:4: volumes.v.structures[0].size: invalid size \"64X\""},
		{"odd size", "volumes:\n  v:\n    structures:\n      - {name: a, size: 1000}\n", "not a positive multiple of 512"},
		{"negative size", "volumes:\n  v:\n    structures:\n      - {name: a, size: -1M}\n", "invalid size"},
		{"no size", "volumes:\n  v:\n    structures:\n      - {name: a}\n", "g.yaml:4: volumes.v.structures[0].size: missing"},
		{"bad role", "volumes:\n  v:\n    structures:\n      - {name: a, role: system-seed, size: 1M}\n", "unknown role \"system-seed\""},
		{"role name", "volumes:\n  v:\n    structures:\n      - {name: efi, role: system-boot, size: 1M}\n", "must be named boot, not \"efi\""},
		{"base name", "volumes:\n  v:\n    structures:\n      - {name: base, role: system-base, size: 1M}\n", "must be named base-a or base-b"},
		{"role fs", "volumes:\n  v:\n    structures:\n      - {name: data, role: system-data, size: 1M, filesystem: vfat}\n", "structures[0].filesystem: a system-data structure has filesystem ext4, not vfat"},
		{"small bootenv", "volumes:\n  v:\n    structures:\n      - {name: bootenv, role: system-bootenv, size: 4096}\n", "needs at least 8192 bytes"},
		{"duplicate name", "volumes:\n  v:\n    structures:\n      - {name: a, size: 1M}\n      - {name: a, size: 1M}\n", "structures[1].name: duplicate structure name \"a\""},
		{"bad type", "volumes:\n  v:\n    structures:\n      - {name: a, size: 1M, type: ntfs}\n", "invalid type \"ntfs\""},
		{"mbr type on gpt", "volumes:\n  v:\n    structures:\n      - {name: a, size: 1M, type: \"83\"}\n", "is an MBR type"},
		{"gpt type on mbr", "volumes:\n  v:\n    schema: mbr\n    structures:\n      - {name: a, size: 1M, type: 0FC63DAF-8483-4772-8E79-3D69D8477DE4}\n", "is a GPT type"},
		{"bad name", "volumes:\n  v:\n    structures:\n      - {name: Boot, size: 1M}\n", "invalid structure name \"Boot\""},
		{"escaping content", "volumes:\n  v:\n    structures:\n      - {name: boot, role: system-boot, size: 8M, content: [{source: ../x, target: x}]}\n", "path \"../x\" must be relative"},
		{"absolute content", "volumes:\n  v:\n    structures:\n      - {name: boot, role: system-boot, size: 8M, content: [{source: x, target: /x}]}\n", "path \"/x\" must be relative"},
		{"image on vfat", "volumes:\n  v:\n    structures:\n      - {name: boot, role: system-boot, size: 8M, content: [{image: x}]}\n", "image content needs filesystem none"},
		{"files on raw", "volumes:\n  v:\n    structures:\n      - {name: a, size: 8M, content: [{source: x, target: x}]}\n", "takes an image"},
		{"half content", "volumes:\n  v:\n    structures:\n      - {name: boot, role: system-boot, size: 8M, content: [{source: x}]}\n", "give source and target"},
		{"three bases", "volumes:\n  v:\n    structures:\n      - {name: base-a, role: system-base, size: 1M}\n      - {name: base-b, role: system-base, size: 1M}\n      - {name: base-a, role: system-base, size: 1M}\n", "duplicate structure name"},
		{"anchor", "volumes:\n  v: &v\n    structures: []\n", "anchors and aliases are not supported"},
		{"slot no interface", minimal + "slots:\n  s:\n    path: /dev/ttyS1\n", "g.yaml:6: slots.s.interface: missing"},
		{"slot bad interface", minimal + "slots:\n  s:\n    interface: usb\n", "unknown interface \"usb\""},
		{"slot wrong attr", minimal + "slots:\n  s:\n    interface: gpio\n    number: 1\n    path: /dev/gpiochip0\n", "g.yaml:9: slots.s.path: a gpio slot takes chip, number, not path"},
		{"gpio no chip", minimal + "slots:\n  s:\n    interface: gpio\n    number: 1\n", "g.yaml:6: slots.s.chip: missing (a gpio slot takes chip, number)"},
		{"serial neither", minimal + "slots:\n  s:\n    interface: serial-port\n", "g.yaml:6: slots.s: a serial-port slot needs path or usb-vendor"},
		{"serial both", minimal + "slots:\n  s:\n    interface: serial-port\n    path: /dev/ttyS1\n    usb-vendor: \"0403\"\n", "g.yaml:9: slots.s.usb-vendor: a serial-port slot takes path or usb-vendor, not both"},
		{"usb product alone", minimal + "slots:\n  s:\n    interface: serial-port\n    path: /dev/ttyS1\n    usb-product: \"6001\"\n", "slots.s.usb-product: needs usb-vendor too"},
		{"usb vendor bad", minimal + "slots:\n  s:\n    interface: serial-port\n    usb-vendor: 403\n", "slots.s.usb-vendor: invalid value \"403\" (want a USB vendor id of four hexadecimal digits"},
		{"usb serial bad", minimal + "slots:\n  s:\n    interface: serial-port\n    usb-vendor: \"0403\"\n    usb-serial: \"a b\"\n", "slots.s.usb-serial: invalid value"},
		{"usb on i2c", minimal + "slots:\n  s:\n    interface: i2c\n    path: /dev/i2c-1\n    usb-vendor: \"0403\"\n", "a i2c slot takes path, not usb-vendor"},
		{"content slot in gadget", minimal + "slots:\n  s:\n    interface: content\n", "unknown interface \"content\""},
		{"slot missing attr", minimal + "slots:\n  s:\n    interface: pwm\n    number: 1\n", "slots.s.chip: missing"},
		{"serial path", minimal + "slots:\n  s:\n    interface: serial-port\n    path: /dev/sda\n", "\"/dev/sda\" is not a serial-port device"},
		{"not dev", minimal + "slots:\n  s:\n    interface: custom-device\n    paths: [/etc/shadow]\n", "\"/etc/shadow\" is not a device path"},
		{"dotdot dev", minimal + "slots:\n  s:\n    interface: custom-device\n    paths: [/dev/../etc/shadow]\n", "is not a device path"},
		{"rule in path", minimal + "slots:\n  s:\n    interface: custom-device\n    paths: [\"/dev/x rw, /etc/shadow\"]\n", "is not a device path (want a clean path under /dev/ of letters"},
		{"brace in path", minimal + "slots:\n  s:\n    interface: custom-device\n    paths: [\"/dev/{a,b}\"]\n", "is not a device path"},
		{"empty paths", minimal + "slots:\n  s:\n    interface: custom-device\n    paths: []\n", "slots.s.paths: empty"},
		{"gpio string", minimal + "slots:\n  s:\n    interface: gpio\n    chip: 0\n    number: \"17\"\n", "must be an integer"},
		{"gpio negative", minimal + "slots:\n  s:\n    interface: gpio\n    chip: -1\n    number: 1\n", "must not be negative"},
		{"connection no slot", minimal + "connections:\n  - plug: hello:serial\n    slot: nope\n", "g.yaml:6: connections[0].slot: no slot \"nope\""},
		{"connection bad plug", minimal + "connections:\n  - plug: hello\n    slot: s\n", "invalid plug \"hello\""},
		{"connection bad app slot", minimal + "connections:\n  - plug: hello:media\n    slot: Files:media\n", "invalid slot \"Files:media\" (want a slot of the gadget, or APP:SLOT"},
		{"connection half", minimal + "connections:\n  - plug: hello:serial\n", "needs plug and slot"},
		{"connection map no slot", minimal + "connections:\n  hello:serial: nope\n", "g.yaml:6: connections.hello:serial: no slot \"nope\""},
		{"connection map bad plug", minimal + "connections:\n  hello: s\n", "g.yaml:6: connections.hello: invalid plug \"hello\""},
		{"connection map not a string", minimal + "connections:\n  hello:serial: [a]\n", "connections.hello:serial"},
		{"defaults tag", minimal + "defaults:\n  hello:\n    x: !!binary aGk=\n", "unsupported value tagged !!binary"},
		{"defaults app", minimal + "defaults:\n  Hello: {}\n", "invalid app name \"Hello\""},
		{"too large", minimal + "#" + strings.Repeat("x", MaxSize), "more than the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := Parse([]byte(tc.yaml), "g.yaml")
			if err == nil {
				t.Fatalf("got %+v, want error %q", g, tc.want)
			}
			if g != nil {
				t.Errorf("got a gadget with the error %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %q, want it to contain %q", err, tc.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("got error of type %T, want *Error", err)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"512", 512, false}, {"4K", 4096, false}, {"4k", 4096, false}, {"64M", 64 << 20, false},
		{"1G", 1 << 30, false}, {"2T", 2 << 40, false}, {"", 0, true}, {"M", 0, true},
		{"+1M", 0, true}, {"-0", 0, true}, {"1.5M", 0, true}, {"9999999999T", 0, true},
	} {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, bad=%v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// The issue writes gadget connections as a mapping (APP:PLUG: SLOT); the
// list form of {plug, slot} is kept. Both give the same connections.
func TestConnectionsMapForm(t *testing.T) {
	const slots = "slots:\n  serial1:\n    interface: serial-port\n    path: /dev/ttyS1\n"
	for name, conns := range map[string]string{
		"map":  "connections:\n  hello:serial: serial1\n  viewer:media: camera:pictures\n",
		"list": "connections:\n  - {plug: hello:serial, slot: serial1}\n  - {plug: viewer:media, slot: camera:pictures}\n",
	} {
		g, err := Parse([]byte(minimal+slots+conns), "g.yaml")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := []Connection{{"hello:serial", "serial1"}, {"viewer:media", "camera:pictures"}}
		if !reflect.DeepEqual(g.Connections, want) {
			t.Errorf("%s: got connections %v, want %v", name, g.Connections, want)
		}
	}
}
