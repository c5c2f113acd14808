package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// capIPCLock is CAP_IPC_LOCK's bit in a capability set.
const capIPCLock = 14

// lockMemory keeps the process's pages, which hold requests in flight, out of swap, where
// they would reach a disk: mlockall of the current and future mappings, each page locked as
// it is first touched (MCL_ONFAULT), so the runtime's large reservations cost nothing until
// used. It is tried only when the lock cannot fail later: a process under a finite
// RLIMIT_MEMLOCK and without CAP_IPC_LOCK would have its future mappings refused once it
// outgrew the limit, which the Go runtime takes for being out of memory.
func lockMemory() error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		return fmt.Errorf("reading RLIMIT_MEMLOCK: %w", err)
	}
	if lim.Cur != unix.RLIM_INFINITY && !hasCapability(capIPCLock) {
		return fmt.Errorf("RLIMIT_MEMLOCK is %d bytes and the process lacks CAP_IPC_LOCK; "+
			"run with an unlimited memlock limit (systemd LimitMEMLOCK=infinity, ulimit -l unlimited) or CAP_IPC_LOCK", lim.Cur)
	}
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
		return fmt.Errorf("mlockall: %w", err)
	}
	return nil
}

// hasCapability reports whether capability bit c is in the process's effective set.
func hasCapability(c uint) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}
