//go:build unix && !linux

package main

import "syscall"

// disableCoreDumps keeps process memory, which holds requests in flight, out of core files.
func disableCoreDumps() error {
	return syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: 0, Max: 0})
}
