package main

import "golang.org/x/sys/unix"

// disableCoreDumps keeps the server's memory, which holds the open documents, out of core
// files: RLIMIT_CORE 0, and not dumpable, which also keeps debuggers of the same user out
// and makes /proc/PID/mem readable by root only.
func disableCoreDumps() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return err
	}
	return unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
}
