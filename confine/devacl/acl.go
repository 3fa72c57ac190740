// Package devacl gives an app's own user access to a device node, and takes
// it back, with one POSIX ACL entry for the app's uid in the node's
// system.posix_acl_access attribute, as systemd-logind's uaccess does for
// the user at the seat.
//
// An ACL, not a group: a group would need a supplementary group in every
// running process of the app, and a running process cannot be given one, so
// a connect would only reach the next launch. An ACL entry is checked at the
// next open(2), by every process of the uid, at once. The entry names one
// uid, so no other app or local user gains anything, and nothing else of
// the node changes: owner, group and the other entries stay, and when the
// last named entry goes the node's mode is what it was before (the ACL's
// mask, which shows as the group bits while named entries exist, is the
// union of the group class, as setfacl computes it).
package devacl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// XattrName is the attribute that holds a file's access ACL.
const XattrName = "system.posix_acl_access"

// Entry tags and the version of the attribute's format
// (include/uapi/linux/posix_acl_xattr.h).
const (
	version    = 2
	tagUserObj = 0x01
	tagUser    = 0x02
	tagGroupOb = 0x04
	tagGroup   = 0x08
	tagMask    = 0x10
	tagOther   = 0x20
	undefID    = 0xffffffff
)

// Permission bits of an entry.
const (
	PermRead  = 4
	PermWrite = 2
	PermExec  = 1
)

// maxEntries bounds an ACL read back from a node (the kernel allows 8191
// entries in 64 KiB; a device node has a handful).
const maxEntries = 1024

// entry is one ACL entry.
type entry struct {
	Tag  uint16
	Perm uint16
	ID   uint32
}

// ACL is a decoded access ACL, its entries sorted as the kernel wants them:
// by tag, then by id.
type ACL struct {
	entries []entry
}

// FromMode is the minimal ACL equivalent to the permission bits of mode.
func FromMode(mode uint32) *ACL {
	return &ACL{entries: []entry{
		{tagUserObj, uint16(mode>>6) & 7, undefID},
		{tagGroupOb, uint16(mode>>3) & 7, undefID},
		{tagOther, uint16(mode) & 7, undefID},
	}}
}

// Parse decodes the value of a system.posix_acl_access attribute. It
// checks the format as the kernel does, so that what it accepts can be
// written back.
func Parse(b []byte) (*ACL, error) {
	if len(b) < 4 || (len(b)-4)%8 != 0 {
		return nil, fmt.Errorf("invalid ACL: %d bytes, not a header and whole entries", len(b))
	}
	if v := binary.LittleEndian.Uint32(b); v != version {
		return nil, fmt.Errorf("invalid ACL: version %d, want %d", v, version)
	}
	n := (len(b) - 4) / 8
	if n > maxEntries {
		return nil, fmt.Errorf("invalid ACL: %d entries, more than %d", n, maxEntries)
	}
	a := &ACL{}
	for i := 0; i < n; i++ {
		o := 4 + 8*i
		e := entry{binary.LittleEndian.Uint16(b[o:]), binary.LittleEndian.Uint16(b[o+2:]), binary.LittleEndian.Uint32(b[o+4:])}
		a.entries = append(a.entries, e)
	}
	if err := a.valid(); err != nil {
		return nil, err
	}
	return a, nil
}

// valid checks what posix_acl_valid checks: one owner, owning group and
// other entry each, named entries in increasing id order, and a mask
// exactly when there are named entries.
func (a *ACL) valid() error {
	count := map[uint16]int{}
	var last entry
	for i, e := range a.entries {
		if e.Perm&^7 != 0 {
			return fmt.Errorf("invalid ACL: permission %#o", e.Perm)
		}
		switch e.Tag {
		case tagUserObj, tagGroupOb, tagMask, tagOther:
			if count[e.Tag] > 0 {
				return fmt.Errorf("invalid ACL: entry %#x twice", e.Tag)
			}
		case tagUser, tagGroup:
			if i > 0 && last.Tag == e.Tag && e.ID <= last.ID {
				return errors.New("invalid ACL: named entries out of order")
			}
		default:
			return fmt.Errorf("invalid ACL: unknown tag %#x", e.Tag)
		}
		if i > 0 && e.Tag < last.Tag {
			return errors.New("invalid ACL: entries out of order")
		}
		count[e.Tag]++
		last = e
	}
	if count[tagUserObj] != 1 || count[tagGroupOb] != 1 || count[tagOther] != 1 {
		return errors.New("invalid ACL: want one owner, owning group and other entry")
	}
	if named := count[tagUser] + count[tagGroup]; named > 0 && count[tagMask] == 0 {
		return errors.New("invalid ACL: named entries without a mask")
	}
	return nil
}

// Encode returns the attribute's value for a.
func (a *ACL) Encode() []byte {
	b := binary.LittleEndian.AppendUint32(nil, version)
	for _, e := range a.entries {
		b = binary.LittleEndian.AppendUint16(b, e.Tag)
		b = binary.LittleEndian.AppendUint16(b, e.Perm)
		b = binary.LittleEndian.AppendUint32(b, e.ID)
	}
	return b
}

// User returns the permission of the named entry of uid, if there is one.
func (a *ACL) User(uid uint32) (uint16, bool) {
	for _, e := range a.entries {
		if e.Tag == tagUser && e.ID == uid {
			return e.Perm, true
		}
	}
	return 0, false
}

// SetUser gives uid the permission perm (PermRead|PermWrite...), replacing
// its entry if it has one, and recomputes the mask.
func (a *ACL) SetUser(uid uint32, perm uint16) {
	a.drop(uid)
	a.entries = append(a.entries, entry{tagUser, perm & 7, uid})
	a.fix()
}

// RemoveUser drops the named entry of uid, if any, and recomputes the mask;
// without named entries left, the mask goes too, and the ACL is again
// equivalent to a mode (the kernel then keeps only the mode).
func (a *ACL) RemoveUser(uid uint32) {
	a.drop(uid)
	a.fix()
}

func (a *ACL) drop(uid uint32) {
	a.entries = slices.DeleteFunc(a.entries, func(e entry) bool { return e.Tag == tagUser && e.ID == uid })
}

// fix sorts the entries and sets the mask to the union of the group class
// (named users, owning group, named groups), or removes it when nothing is
// named.
func (a *ACL) fix() {
	a.entries = slices.DeleteFunc(a.entries, func(e entry) bool { return e.Tag == tagMask })
	named, union := false, uint16(0)
	for _, e := range a.entries {
		switch e.Tag {
		case tagUser, tagGroup:
			named = true
			union |= e.Perm
		case tagGroupOb:
			union |= e.Perm
		}
	}
	if named {
		a.entries = append(a.entries, entry{tagMask, union, undefID})
	}
	slices.SortFunc(a.entries, func(x, y entry) int {
		if x.Tag != y.Tag {
			return int(x.Tag) - int(y.Tag)
		}
		switch {
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
}

// Minimal reports whether a holds no named entry, that is whether a mode
// says all of it.
func (a *ACL) Minimal() bool {
	for _, e := range a.entries {
		if e.Tag == tagUser || e.Tag == tagGroup || e.Tag == tagMask {
			return false
		}
	}
	return true
}

// String spells a as getfacl does, on one line: "user::rw-,user:70001:rw-,...".
func (a *ACL) String() string {
	var parts []string
	for _, e := range a.entries {
		id := ""
		if e.Tag == tagUser || e.Tag == tagGroup {
			id = fmt.Sprint(e.ID)
		}
		name := map[uint16]string{tagUserObj: "user", tagUser: "user", tagGroupOb: "group", tagGroup: "group", tagMask: "mask", tagOther: "other"}[e.Tag]
		parts = append(parts, name+":"+id+":"+permString(e.Perm))
	}
	return strings.Join(parts, ",")
}

func permString(p uint16) string {
	b := []byte("---")
	for i, c := range "rwx" {
		if p&(4>>i) != 0 {
			b[i] = byte(c)
		}
	}
	return string(b)
}

// ParsePerm turns "r", "rw", "rwm" (a device cgroup access, whose m has no
// meaning for a node) into permission bits.
func ParsePerm(access string) uint16 {
	var p uint16
	if strings.Contains(access, "r") {
		p |= PermRead
	}
	if strings.Contains(access, "w") {
		p |= PermWrite
	}
	return p
}
