package netmgr

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"paddock.dev/paddock/internal/dirs"
)

// wiredInterfaces returns the wired ethernet interfaces present, from
// /sys/class/net: ARP type 1 (ethernet) on a device (not a bridge, veth or
// other virtual link) that is not wireless (Wi-Fi needs more than DHCP).
func wiredInterfaces() ([]string, error) {
	dir := filepath.Join(dirs.Root, "sys/class/net")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list the network interfaces: %w", err)
	}
	var names []string
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		t, err := os.ReadFile(filepath.Join(p, "type"))
		if err != nil || strings.TrimSpace(string(t)) != "1" {
			continue
		}
		if !exists(filepath.Join(p, "device")) || exists(filepath.Join(p, "wireless")) || exists(filepath.Join(p, "phy80211")) {
			continue
		}
		names = append(names, e.Name())
	}
	return names, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
