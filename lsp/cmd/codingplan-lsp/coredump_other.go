//go:build !linux

package main

import "syscall"

// disableCoreDumps keeps process memory, which holds open documents, out of core files.
func disableCoreDumps() error {
	return syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: 0, Max: 0})
}
