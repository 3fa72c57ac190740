//go:build !linux

package pkgfs

import (
	"errors"
	"io/fs"
	"os"
)

var errNotLinux = errors.New("reading installed packages needs Linux (openat2 or O_PATH)")

func openRoot(string) (*os.File, error) { return nil, errNotLinux }

func (r *Root) lstat(string) (fs.FileInfo, error) { return nil, errNotLinux }
func (r *Root) readLink(string) (string, error)   { return "", errNotLinux }
func (r *Root) open(string) (*os.File, error)     { return nil, errNotLinux }
func (r *Root) readRegular(string, fs.FileInfo, int64) ([]byte, error) {
	return nil, errNotLinux
}
