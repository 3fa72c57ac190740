package denials

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// readKmsg reads every record now in the kernel ring buffer at name without
// waiting for new ones. /dev/kmsg returns one record per read and EAGAIN
// at the end; a record overwritten while we read gives EPIPE, and we go on.
func readKmsg(name string) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot read kernel log (try --file with saved dmesg output): %w", &os.PathError{Op: "open", Path: name, Err: err})
	}
	defer unix.Close(fd)
	var out bytes.Buffer
	buf := make([]byte, 16*1024) // a record is at most 8 KiB; a short buffer gives EINVAL
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EPIPE):
			continue
		case errors.Is(err, unix.EAGAIN):
			return out.Bytes(), nil
		case err != nil:
			return out.Bytes(), fmt.Errorf("cannot read kernel log: %w", os.NewSyscallError("read "+name, err))
		case n == 0:
			return out.Bytes(), nil // a regular file (tests): end of file
		}
		out.Write(buf[:n]) // each record ends in a newline
	}
}
