package main

import "golang.org/x/sys/unix"

// disableCoreDumps keeps process memory, which holds open documents, out of core files:
// RLIMIT_CORE 0, and not dumpable (which also keeps other users' debuggers and /proc/<pid>/mem
// readers out).
func disableCoreDumps() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
