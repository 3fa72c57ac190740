// Package memrelease gives back to the kernel the memory that a
// long-running process (the agent) no longer uses once it is idle.
package memrelease

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// mapping is one mapping of /proc/PID/smaps, with the fields Release
// needs.
type mapping struct {
	start, end   uint64
	perms        string
	major, minor uint32
	inode        uint64
	// rss and anonymous are in KiB: the mapping's resident pages, and those
	// of them that are the process's own (written copies of file pages).
	rss, anonymous uint64
}

// parseSmaps reads the mappings of an smaps file; it skips what it cannot
// read.
func parseSmaps(data []byte) []mapping {
	var ms []mapping
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<16)
	for sc.Scan() {
		line := sc.Text()
		if m, ok := parseHeader(line); ok {
			ms = append(ms, m)
			continue
		}
		if len(ms) == 0 {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch key {
		case "Rss":
			ms[len(ms)-1].rss = n
		case "Anonymous":
			ms[len(ms)-1].anonymous = n
		}
	}
	return ms
}

// parseHeader reads the first line of a mapping:
// "START-END PERMS OFFSET MAJOR:MINOR INODE [PATH]".
func parseHeader(line string) (mapping, bool) {
	f := strings.Fields(line)
	if len(f) < 5 || len(f[1]) != 4 {
		return mapping{}, false
	}
	start, end, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, false
	}
	major, minor, ok := strings.Cut(f[3], ":")
	if !ok {
		return mapping{}, false
	}
	var m mapping
	var errs [5]error
	m.start, errs[0] = strconv.ParseUint(start, 16, 64)
	m.end, errs[1] = strconv.ParseUint(end, 16, 64)
	maj, e2 := strconv.ParseUint(major, 16, 32)
	min, e3 := strconv.ParseUint(minor, 16, 32)
	errs[2], errs[3] = e2, e3
	m.inode, errs[4] = strconv.ParseUint(f[4], 10, 64)
	for _, err := range errs {
		if err != nil {
			return mapping{}, false
		}
	}
	if m.end <= m.start {
		return mapping{}, false
	}
	m.perms, m.major, m.minor = f[1], uint32(maj), uint32(min)
	return m, true
}

// droppable returns the mappings of the file (major:minor, inode) whose
// pages can be unmapped without losing anything: private, not writable,
// holding resident pages and no page of the process's own (a relocated
// read-only segment has written copies: unmapping those would undo the
// relocation).
func droppable(ms []mapping, major, minor uint32, inode uint64) []mapping {
	var out []mapping
	for _, m := range ms {
		if m.inode != inode || m.major != major || m.minor != minor {
			continue
		}
		if m.perms[0] != 'r' || m.perms[1] != '-' || m.perms[3] != 'p' || m.rss == 0 || m.anonymous != 0 {
			continue
		}
		out = append(out, m)
	}
	return out
}
