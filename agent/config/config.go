// Package config reads the agent's configuration, agent.yaml: which broker
// the fleet link talks to, as which device, in which groups, and how the
// appliance brings its network up.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"paddock.dev/paddock/internal/dirs"
)

// maxSize bounds agent.yaml.
const maxSize = 64 << 10

var idRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) })

// Config is the agent's configuration. The zero value runs no fleet link.
type Config struct {
	// Brokers are the MQTT brokers, tried in order: tcp://HOST:PORT or ssl://HOST:PORT.
	Brokers []string `yaml:"brokers"`
	// DeviceID names the device to the fleet; empty means the machine id.
	DeviceID string `yaml:"device-id"`
	// Groups are the fleet groups the device takes group commands for.
	Groups []string `yaml:"groups"`
	// TLS names the files of an ssl:// connection.
	TLS TLS `yaml:"tls"`
	// Download bounds the artifact downloads of fleet commands.
	Download Download `yaml:"download"`
	// Base tunes how a tried base is committed.
	Base Base `yaml:"base"`
	// Network says how the appliance brings its network up (network.go).
	Network Network `yaml:"network"`
}

// Base tunes how the agent commits a base it tries after an update. The
// agent.yaml of the tried base is the one that counts: a base carries the
// window it needs.
type Base struct {
	// HealthWindow is how long a tried base has to become healthy (the
	// agent up, the fleet link connected when configured, no app in
	// error) before the agent marks it bad and reboots to the old base;
	// zero means 2 minutes.
	HealthWindow time.Duration `yaml:"health-window"`
}

// MaxBaseHealthWindow bounds base.health-window.
const MaxBaseHealthWindow = time.Hour

// Download bounds artifact downloads; a command may set its own. Zero
// fields take the defaults: at least 1 KiB/s over any 30 s, and 10 minutes
// plus the artifact's size at that rate in all.
type Download struct {
	// MinRate is in bytes per second; negative means no minimum.
	MinRate int64 `yaml:"min-rate"`
	// RateWindow is how long the rate is averaged over.
	RateWindow time.Duration `yaml:"rate-window"`
	// Deadline bounds a whole download; negative means none.
	Deadline time.Duration `yaml:"deadline"`
}

// TLS names the certificate files of the link, relative to the root directory when not absolute.
type TLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Path is where agent.yaml lives.
func Path() string { return filepath.Join(dirs.Root, "etc/paddock/agent.yaml") }

// Load reads agent.yaml; a missing file gives the zero Config.
func Load() (*Config, error) {
	data, err := os.ReadFile(Path())
	if errors.Is(err, os.ErrNotExist) {
		return &Config{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read agent configuration: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Path(), err)
	}
	return c, nil
}

// Parse parses and checks agent.yaml. A single "broker: URL" is accepted
// for "brokers: [URL]".
func Parse(data []byte) (*Config, error) {
	if len(data) > maxSize {
		return nil, fmt.Errorf("configuration is larger than %d bytes", maxSize)
	}
	var raw struct {
		Config `yaml:",inline"`
		Broker string `yaml:"broker"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		// A type error lists each field on a line of its own, and may
		// quote a value with line breaks: one line.
		msg := strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "yaml: ")), " ")
		return nil, fmt.Errorf("invalid configuration: %s", msg)
	}
	c := raw.Config
	if raw.Broker != "" {
		c.Brokers = append([]string{raw.Broker}, c.Brokers...)
	}
	return &c, c.Check()
}

// Check reports the first thing wrong in c.
func (c *Config) Check() error {
	for _, b := range c.Brokers {
		if err := checkBroker(b); err != nil {
			return err
		}
	}
	if c.DeviceID != "" && !idRe().MatchString(c.DeviceID) {
		return fmt.Errorf("device-id %q: want letters, digits, dots, dashes and underscores, at most 64", c.DeviceID)
	}
	for _, g := range c.Groups {
		if !idRe().MatchString(g) {
			return fmt.Errorf("group %q: want letters, digits, dots, dashes and underscores, at most 64", g)
		}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return errors.New("tls: cert and key go together")
	}
	if c.Download.RateWindow < 0 {
		return fmt.Errorf("download: rate-window %v: want a positive duration such as 30s", c.Download.RateWindow)
	}
	if w := c.Base.HealthWindow; w < 0 || w > 0 && w < time.Second || w > MaxBaseHealthWindow {
		return fmt.Errorf("base: health-window %v: want a duration from 1s to %v, such as 2m", w, MaxBaseHealthWindow)
	}
	return nil
}

func checkBroker(b string) error {
	u, err := url.Parse(b)
	if err != nil || u.Host == "" {
		return fmt.Errorf("broker %q: want tcp://HOST:PORT or ssl://HOST:PORT", b)
	}
	switch u.Scheme {
	case "tcp", "ssl", "tls", "mqtt", "mqtts":
		return nil
	}
	return fmt.Errorf("broker %q: unknown scheme %q (want tcp or ssl)", b, u.Scheme)
}

// DeviceIDOrDefault returns the configured device id, or the machine id,
// or the host name.
func (c *Config) DeviceIDOrDefault() string {
	if c.DeviceID != "" {
		return c.DeviceID
	}
	if b, err := os.ReadFile(filepath.Join(dirs.Root, "etc/machine-id")); err == nil {
		if id := strings.TrimSpace(string(b)); idRe().MatchString(id) {
			return id
		}
	}
	h, _ := os.Hostname()
	return h
}
