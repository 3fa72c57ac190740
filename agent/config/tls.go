package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"paddock.dev/paddock/internal/dirs"
)

// TLSConfig builds the TLS settings of ssl:// brokers from the named files,
// or returns nil when none are named.
func (c *Config) TLSConfig() (*tls.Config, error) {
	if c.TLS == (TLS{}) {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS.CA != "" {
		pem, err := os.ReadFile(rooted(c.TLS.CA))
		if err != nil {
			return nil, fmt.Errorf("cannot read the broker's CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("the broker's CA file holds no PEM certificate")
		}
		conf.RootCAs = pool
	}
	if c.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(rooted(c.TLS.Cert), rooted(c.TLS.Key))
		if err != nil {
			return nil, fmt.Errorf("cannot load the device's client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// rooted resolves a path of agent.yaml: relative paths are under etc/paddock.
func rooted(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Join(dirs.Root, p)
	}
	return filepath.Join(dirs.Root, "etc/paddock", p)
}
