package memrelease

import (
	"fmt"
	"os"
	"runtime/debug"
	"syscall"

	"golang.org/x/sys/unix"
)

// Release gives back to the kernel what the process no longer uses, and
// returns how many KiB of its own binary it stopped mapping:
//
//   - the heap that the Go runtime keeps after a burst of work (an install
//     verifies and unpacks megabytes), through debug.FreeOSMemory, and
//     what the C allocator keeps (malloc_trim);
//   - the pages of the process's binary that start-up and the last burst
//     of work mapped (package init, the install path, code run once),
//     through MADV_DONTNEED on the binary's read-only mappings. The
//     kernel maps a file's pages in large blocks around each fault (the
//     whole binary ends up mapped on a filesystem with large folios); the
//     pages stay in the page cache, the process only stops mapping them,
//     so the kernel can reclaim them like any cached page instead of
//     keeping them as a running program's code. Code that runs again
//     faults its pages back in from the page cache.
//
// Call it when the process is idle: it costs a garbage collection.
func Release() (unmappedKiB uint64, err error) {
	debug.FreeOSMemory()
	trimMalloc()
	fi, err := os.Stat("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("cannot release memory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("cannot release memory: no inode for /proc/self/exe")
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("cannot release memory: %w", err)
	}
	for _, m := range droppable(parseSmaps(smaps), unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino) {
		// A raw call: the range is the process's own mapping, not a Go slice.
		_, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED)
		if errno != 0 {
			return unmappedKiB, fmt.Errorf("cannot release memory: %w", os.NewSyscallError("madvise", errno))
		}
		unmappedKiB += m.rss
	}
	return unmappedKiB, nil
}
