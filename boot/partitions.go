package boot

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// partitions maps partition names (GPT PARTNAME) to device names ("vda3").
type partitions map[string]string

// findPartitions lists the named partitions in sysClassBlock. Two
// partitions with the same name (a second paddock disk plugged in) are an
// error: init cannot tell which one it booted from.
func findPartitions() (partitions, error) {
	entries, err := os.ReadDir(sysClassBlock)
	if err != nil {
		return nil, fmt.Errorf("cannot list block devices: %w", err)
	}
	parts := partitions{}
	for _, ent := range entries {
		u, err := readUevent(filepath.Join(sysClassBlock, ent.Name(), "uevent"))
		if err != nil || u["DEVTYPE"] != "partition" || u["PARTNAME"] == "" || u["DEVNAME"] == "" {
			continue // not a named partition, or gone meanwhile
		}
		name, dev := u["PARTNAME"], u["DEVNAME"]
		if other, ok := parts[name]; ok && other != dev {
			return nil, fmt.Errorf("two partitions named %q (%s and %s): detach the other paddock disk", name, other, dev)
		}
		parts[name] = dev
	}
	return parts, nil
}

// readUevent reads the KEY=VALUE lines of a sysfs uevent file.
func readUevent(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	return kv, sc.Err()
}

// partitionPollInterval is how often waitPartitions looks again.
var partitionPollInterval = 50 * time.Millisecond

// waitPartitions waits until every partition in names is listed and its
// device node exists, up to timeout, and returns all partitions found.
func waitPartitions(timeout time.Duration, names ...string) (partitions, error) {
	deadline := time.Now().Add(timeout)
	for {
		parts, err := findPartitions()
		if err != nil {
			return nil, err
		}
		missing := parts.missing(names)
		if len(missing) == 0 {
			return parts, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("disk partitions %s not found after %v (found: %s; is the disk attached and its driver in paddock.modules?)",
				strings.Join(missing, ", "), timeout, parts)
		}
		time.Sleep(partitionPollInterval)
	}
}

// missing returns the names without a partition or without a device node.
func (p partitions) missing(names []string) []string {
	var out []string
	for _, n := range names {
		dev, ok := p[n]
		if !ok {
			out = append(out, n)
		} else if _, err := os.Stat(p.node(n)); err != nil {
			out = append(out, n+" (no "+filepath.Join(devDir, dev)+")")
		}
	}
	return out
}

// node returns the device node of the partition name.
func (p partitions) node(name string) string { return filepath.Join(devDir, p[name]) }

func (p partitions) String() string {
	var s []string
	for name, dev := range p {
		s = append(s, name+"="+dev)
	}
	slices.Sort(s)
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}
