package manifest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const plugsYAML = `name: viewer
version: "1"
plugs:
  network:
  media:
    interface: content
    target: shared/media
slots:
  logs:
    interface: content
    path: out/logs
  inbox:
    interface: content
    path: inbox
    write: true
apps:
  viewer:
    command: bin/viewer
    plugs: [serial-port]
  sync:
    command: bin/sync
    plugs:
      backup:
        interface: content
      hardware-observe:
  plain:
    command: bin/plain
`

func TestParsePlugs(t *testing.T) {
	m, err := Parse([]byte(plugsYAML), Path)
	if err != nil {
		t.Fatal(err)
	}
	np := func(name, iface, target string) NamedPlug {
		return NamedPlug{Name: name, Plug: Plug{Interface: iface, Target: target}}
	}
	tests := []struct {
		cmd  string
		want []NamedPlug
	}{
		{"viewer", []NamedPlug{np("media", "content", "shared/media"), np("network", "network", ""), np("serial-port", "serial-port", "")}},
		{"sync", []NamedPlug{np("backup", "content", ""), np("hardware-observe", "hardware-observe", ""), np("media", "content", "shared/media"), np("network", "network", "")}},
		{"plain", []NamedPlug{np("media", "content", "shared/media"), np("network", "network", "")}},
	}
	for _, tt := range tests {
		if got := m.PlugsOf(tt.cmd); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got plugs %+v, want %+v", tt.cmd, got, tt.want)
		}
	}
	if got := len(m.AllPlugs()); got != 5 {
		t.Errorf("got %d plugs in all, want 5: %+v", got, m.AllPlugs())
	}
	wantSlots := map[string]*Slot{"logs": {Interface: "content", Path: "out/logs"}, "inbox": {Interface: "content", Path: "inbox", Write: true}}
	if !reflect.DeepEqual(m.Slots, wantSlots) {
		t.Errorf("got slots %+v, want %+v", m.Slots, wantSlots)
	}
}

func TestParsePlugsRefuses(t *testing.T) {
	base := "name: a\nversion: \"1\"\n"
	app := "apps:\n  a:\n    command: bin/a\n"
	tests := []struct{ name, yaml, want string }{
		{"bad top name", base + "plugs:\n  Net:\n", `meta/app.yaml:4: plugs.Net: invalid plug name "Net"`},
		{"bad attr", base + "plugs:\n  m:\n    interface: content\n    source: x\n", `plugs.m.source: unknown field`},
		{"bad interface", base + "plugs:\n  m:\n    interface: Content\n", `meta/app.yaml:5: plugs.m.interface: invalid interface name "Content"`},
		{"escaping target", base + "plugs:\n  m:\n    interface: content\n    target: ../b\n", `plugs.m.target: "../b" is not a path inside the app's data`},
		{"absolute target", base + "plugs:\n  m:\n    interface: content\n    target: /etc\n", `is not a path inside the app's data`},
		{"target with comma", base + "plugs:\n  m:\n    interface: content\n    target: a,b\n", `is not a path inside the app's data`},
		{"dot target", base + "plugs:\n  m:\n    interface: content\n    target: a/./b\n", `is not a path inside the app's data`},
		{"twice", base + "plugs: [network]\n" + app + "    plugs: [network]\n", `apps.a.plugs: plug "network" is declared at the top level already`},
		{"slot without path", base + "slots:\n  s:\n    interface: content\n", `meta/app.yaml:4: slots.s.path: missing`},
		{"slot without interface", base + "slots:\n  s:\n    path: x\n", `slots.s.interface: missing`},
		{"slot write string", base + "slots:\n  s:\n    interface: content\n    path: x\n    write: \"yes\"\n", `slots.s.write: must be true or false`},
		{"slot escaping", base + "slots:\n  s:\n    interface: content\n    path: ../../b\n", `slots.s.path: "../../b" is not a path inside`},
		{"slot bad name", base + "slots:\n  S:\n    interface: content\n    path: x\n", `invalid slot name "S"`},
		{"command plug scalar", base + app + "    plugs: network\n", `must be a list of plug names`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.yaml), Path)
			if err == nil || m != nil {
				t.Fatalf("got %+v, %v, want an error containing %q", m, err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want one containing %q", err, tt.want)
			}
		})
	}
}
