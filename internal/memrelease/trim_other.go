//go:build !linux || !cgo

package memrelease

// trimMalloc does nothing: without cgo there is no C allocator.
func trimMalloc() {}
