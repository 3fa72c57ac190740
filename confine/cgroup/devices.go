package cgroup

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// DeviceRule allows access to a device or a range of devices.
type DeviceRule struct {
	Type         rune   // 'c' (char), 'b' (block) or 'a' (all devices: disables the allowlist)
	Major, Minor int64  // -1 means any
	Access       string // a subset of "rwm": read, write, mknod
}

// String formats r the way devices.allow and devices.list spell it: "c 1:3 rwm".
func (r DeviceRule) String() string {
	return fmt.Sprintf("%c %s:%s %s", r.Type, devNum(r.Major), devNum(r.Minor), r.Access)
}

func devNum(n int64) string {
	if n < 0 {
		return "*"
	}
	return strconv.FormatInt(n, 10)
}

// DefaultDevices is the allowlist every app gets: the basic character devices,
// the terminal and pseudo-terminals, and mknod (not open) of any device, as runc
// and snapd allow; creating nodes still needs CAP_MKNOD, which apps lack.
func DefaultDevices() []DeviceRule {
	return []DeviceRule{
		{'c', -1, -1, "m"},
		{'b', -1, -1, "m"},
		{'c', 1, 3, "rwm"},    // null
		{'c', 1, 5, "rwm"},    // zero
		{'c', 1, 7, "rwm"},    // full
		{'c', 1, 8, "rwm"},    // random
		{'c', 1, 9, "rwm"},    // urandom
		{'c', 5, 0, "rwm"},    // tty
		{'c', 5, 1, "rwm"},    // console
		{'c', 5, 2, "rwm"},    // ptmx
		{'c', 136, -1, "rwm"}, // pts
	}
}

func validateRules(rules []DeviceRule) error {
	for _, r := range rules {
		if err := r.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (r DeviceRule) validate() error {
	switch r.Type {
	case 'c', 'b':
	case 'a':
		if r.Major != -1 || r.Minor != -1 || r.Access != "rwm" {
			return fmt.Errorf("invalid device rule %q: type a allows every device and needs -1:-1 rwm", r)
		}
	default:
		return fmt.Errorf("invalid device rule %q: type must be c, b or a", r)
	}
	if r.Major < -1 || r.Minor < -1 || r.Major > 0xffffffff || r.Minor > 0xffffffff {
		return fmt.Errorf("invalid device rule %q: major and minor must be -1 (any) or a device number", r)
	}
	if r.Access == "" || strings.Trim(r.Access, "rwm") != "" {
		return fmt.Errorf("invalid device rule %q: access must be a non-empty subset of rwm", r)
	}
	return nil
}

// devKey identifies one entry of a v1 device list.
type devKey struct {
	typ          byte
	major, minor int64
}

// access bits
const (
	accR = 1 << iota
	accW
	accM
)

// devSet is a normalized allowlist: which access bits each entry grants.
type devSet map[devKey]int

func parseAccess(s string) (int, error) {
	a := 0
	for _, c := range s {
		switch c {
		case 'r':
			a |= accR
		case 'w':
			a |= accW
		case 'm':
			a |= accM
		default:
			return 0, fmt.Errorf("invalid device access %q", s)
		}
	}
	return a, nil
}

func accessString(a int) string {
	var b strings.Builder
	for i, c := range "rwm" {
		if a&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// toSet normalizes rules the way the v1 kernel stores them: one entry per
// type and numbers, access bits merged; any 'a' rule means allow all.
func toSet(rules []DeviceRule) devSet {
	s := devSet{}
	for _, r := range rules {
		a, _ := parseAccess(r.Access)
		if r.Type == 'a' {
			return devSet{allowAllKey: accR | accW | accM}
		}
		s[devKey{byte(r.Type), r.Major, r.Minor}] |= a
	}
	return s
}

var allowAllKey = devKey{'a', -1, -1}

func (s devSet) allowAll() bool { return s[allowAllKey] != 0 }

// parseDevicesList parses a v1 devices.list file.
func parseDevicesList(data string) (devSet, error) {
	s := devSet{}
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 || len(f[0]) != 1 || strings.Count(f[1], ":") != 1 {
			return nil, fmt.Errorf("invalid devices.list line %q", line)
		}
		maj, min, _ := strings.Cut(f[1], ":")
		major, err1 := parseDevNum(maj)
		minor, err2 := parseDevNum(min)
		a, err3 := parseAccess(f[2])
		if err1 != nil || err2 != nil || err3 != nil || !strings.Contains("abc", f[0]) {
			return nil, fmt.Errorf("invalid devices.list line %q", line)
		}
		s[devKey{f[0][0], major, minor}] |= a
	}
	return s, nil
}

func parseDevNum(s string) (int64, error) {
	if s == "*" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil && n < 0 {
		err = fmt.Errorf("negative device number %q", s)
	}
	return n, err
}

// devWrite is one line written to devices.allow (allow) or devices.deny.
type devWrite struct {
	rule  DeviceRule
	allow bool
}

// diffSets returns the v1 writes, in order, that turn cur into want without a
// window in which anything wanted is missing: allows first, then denies. A
// change of default (allow all <-> allowlist) needs deny all, then allows.
func diffSets(cur, want devSet) []devWrite {
	all := DeviceRule{'a', -1, -1, "rwm"}
	if want.allowAll() {
		return []devWrite{{all, true}}
	}
	if cur.allowAll() {
		w := []devWrite{{all, false}}
		for _, r := range want.rules() {
			w = append(w, devWrite{r, true})
		}
		return w
	}
	var allow, deny []DeviceRule
	for k, w := range want {
		if add := w &^ cur[k]; add != 0 {
			allow = append(allow, DeviceRule{rune(k.typ), k.major, k.minor, accessString(add)})
		}
	}
	for k, c := range cur {
		if del := c &^ want[k]; del != 0 {
			deny = append(deny, DeviceRule{rune(k.typ), k.major, k.minor, accessString(del)})
		}
	}
	sortRules(allow)
	sortRules(deny)
	var w []devWrite
	for _, r := range allow {
		w = append(w, devWrite{r, true})
	}
	for _, r := range deny {
		w = append(w, devWrite{r, false})
	}
	return w
}

func (s devSet) rules() []DeviceRule {
	var out []DeviceRule
	for k, a := range s {
		if a != 0 {
			out = append(out, DeviceRule{rune(k.typ), k.major, k.minor, accessString(a)})
		}
	}
	sortRules(out)
	return out
}

func sortRules(r []DeviceRule) {
	slices.SortFunc(r, func(a, b DeviceRule) int { return strings.Compare(a.String(), b.String()) })
}

func (s devSet) equal(o devSet) bool {
	clean := func(m devSet) devSet {
		n := devSet{}
		for k, v := range m {
			if v != 0 {
				n[k] = v
			}
		}
		return n
	}
	a, b := clean(s), clean(o)
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
