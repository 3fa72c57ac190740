//go:build linux && cgo

package memrelease

// #include <malloc.h>
import "C"

// trimMalloc gives back the free memory of the C allocator's arenas: the
// agent's C code (libseccomp, which compiles the filters of an install)
// leaves one arena per thread that called it, holding what it freed.
func trimMalloc() { C.malloc_trim(0) }
