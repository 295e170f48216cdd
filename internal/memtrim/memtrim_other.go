//go:build !linux

package memtrim

// Release does nothing outside Linux.
func Release() (Result, error) { return Result{Unsupported: true}, nil }
