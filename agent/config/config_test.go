package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"paddock.dev/paddock/internal/dirs/dirstest"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       *Config
		wantErr    string
	}{
		{"empty", "", &Config{}, ""},
		{"one broker", "broker: tcp://127.0.0.1:1883\ndevice-id: dev1\ngroups: [lab, eu]\n",
			&Config{Brokers: []string{"tcp://127.0.0.1:1883"}, DeviceID: "dev1", Groups: []string{"lab", "eu"}}, ""},
		{"brokers", "brokers:\n  - ssl://a:8883\n  - ssl://b:8883\ntls: {ca: ca.pem, cert: c.pem, key: k.pem}\n",
			&Config{Brokers: []string{"ssl://a:8883", "ssl://b:8883"}, TLS: TLS{CA: "ca.pem", Cert: "c.pem", Key: "k.pem"}}, ""},
		{"download", "download: {min-rate: 512, rate-window: 1m, deadline: 2h}\n",
			&Config{Download: Download{MinRate: 512, RateWindow: time.Minute, Deadline: 2 * time.Hour}}, ""},
		{"no download deadline", "download: {min-rate: -1, deadline: -1s}\n",
			&Config{Download: Download{MinRate: -1, Deadline: -time.Second}}, ""},
		{"base health window", "base: {health-window: 20s}\n", &Config{Base: Base{HealthWindow: 20 * time.Second}}, ""},
		{"negative base health window", "base: {health-window: -1s}\n", nil, "health-window"},
		{"short base health window", "base: {health-window: 5ms}\n", nil, "health-window"},
		{"long base health window", "base: {health-window: 2h}\n", nil, "health-window"},
		{"bad download window", "download: {rate-window: -5s}\n", nil, "rate-window"},
		{"bad download duration", "download: {deadline: soon}\n", nil, "invalid configuration"},
		{"unknown field", "brokr: tcp://a:1\n", nil, "brokr"},
		{"bad scheme", "broker: http://a:1\n", nil, "unknown scheme"},
		{"no host", "broker: tcp://\n", nil, "want tcp://HOST:PORT"},
		{"bad id", "device-id: 'a b'\n", nil, "device-id"},
		{"bad group", "groups: ['../x']\n", nil, "group"},
		{"cert without key", "tls: {cert: c.pem}\n", nil, "go together"},
		{"not yaml", "broker: [\n", nil, "invalid configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLoadAndDeviceID(t *testing.T) {
	root := dirstest.SetRoot(t)
	c, err := Load()
	if err != nil || len(c.Brokers) != 0 {
		t.Fatalf("missing file: got %+v, %v, want an empty config", c, err)
	}
	os.MkdirAll(filepath.Join(root, "etc/paddock"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("0123abcd\n"), 0o644)
	os.WriteFile(Path(), []byte("broker: tcp://127.0.0.1:1\n"), 0o644)
	c, err = Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DeviceIDOrDefault(); got != "0123abcd" {
		t.Errorf("device id: got %q, want the machine id", got)
	}
	os.WriteFile(Path(), []byte("bogus: 1\n"), 0o644)
	if _, err := Load(); err == nil || !strings.Contains(err.Error(), Path()) {
		t.Errorf("bad file: got %v, want an error naming %s", err, Path())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "broker: tcp://a:1\n", "brokers: [ssl://a:1]\ngroups: [x]\n", "tls: {cert: a, key: b}\n", "device-id: dev1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err == nil && c.Check() != nil {
			t.Errorf("Parse accepted a config that Check refuses: %+v", c)
		}
	})
}
