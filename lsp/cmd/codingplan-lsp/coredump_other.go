//go:build unix && !linux

package main

import "syscall"

// disableCoreDumps keeps the server's memory, which holds the open documents, out of core
// files.
func disableCoreDumps() error {
	return syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{Cur: 0, Max: 0})
}
