package upstream

import "syscall"

// setLowWater sets the socket's SO_RCVLOWAT: the kernel wakes a reader (and reports the
// socket readable) only once n bytes are queued, the peer closed, or its buffer is under
// pressure. A non-blocking read still returns what is queued.
func setLowWater(rc syscall.RawConn, n int) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
	}); err != nil {
		return err
	}
	return serr
}
