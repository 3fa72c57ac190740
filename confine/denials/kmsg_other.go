//go:build !linux

package denials

import "errors"

func readKmsg(name string) ([]byte, error) {
	return nil, errors.New("cannot read the kernel log on this system: use --file with saved dmesg output")
}
