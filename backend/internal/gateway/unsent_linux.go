package gateway

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// unsentBytes stores in n what the socket fd holds that the peer has not acknowledged
// (SIOCOUTQ). n points into the connection, so that the call allocates nothing
// (unix.IoctlGetInt's result escapes to the heap).
func unsentBytes(fd uintptr, n *int32) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, fd, unix.SIOCOUTQ, uintptr(unsafe.Pointer(n))); e != 0 {
		return e
	}
	return nil
}
