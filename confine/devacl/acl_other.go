//go:build !linux

package devacl

import "errors"

var errNotLinux = errors.New("cannot change device access: POSIX ACLs on device nodes need Linux")

// Grant fails: device ACLs need Linux.
func Grant(path string, uid int, perm uint16) error { return errNotLinux }

// Revoke fails: device ACLs need Linux.
func Revoke(path string, uid int) error { return errNotLinux }

// Get fails: device ACLs need Linux.
func Get(path string) (*ACL, error) { return nil, errNotLinux }
