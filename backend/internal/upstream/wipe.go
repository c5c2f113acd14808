package upstream

import (
	"net"
	"unsafe"
)

// wipeConn is a provider connection that clears, as it goes, what the HTTP client's buffers
// held of the exchanges on it: the request (prompt and code) and the response (model
// output). net/http keeps a bufio.Writer and a bufio.Reader per connection, kept alive
// between requests, which would otherwise hold the last request's and response's bytes for
// as long as the connection lives.
//
//   - Read clears the part of p that earlier reads filled before reading into it, which
//     io.Reader allows ("Read may use all of p as scratch space"). The client's bufio.Reader
//     hands its whole buffer to Read whenever it has consumed all it held, so the last
//     response is cleared when the connection goes back to the pool and the client waits for
//     the next one. Under TLS, the same clears the record buffer where crypto/tls decrypts in
//     place.
//   - Write clears p once all of it was written. io.Writer asks a writer not to modify p; the
//     callers here do not read p again after a complete write: net/http's bufio.Writer
//     (Flush writes buf[:n] and starts over), the copy buffer io.Copy makes for a request
//     body, and crypto/tls's record buffers.
//
// With TLS, the bufio buffers sit above crypto/tls, where this connection does not see them
// (see docs/operations.md). Reads come from one goroutine at a time (see pacedConn).
type wipeConn struct {
	net.Conn
	buf   []byte // the buffer reads go into: the reader's whole buffer, as first seen
	dirty int    // buf[:dirty] may hold bytes that reads put there
}

func (c *wipeConn) Read(p []byte) (int, error) {
	off, ok := within(c.buf, p)
	if ok {
		// Only what reads filled can be stale: clearing that, not all of p, keeps the cost
		// to the bytes that passed through (the buffer is 32 KiB, a read often far less).
		if end := min(c.dirty, off+len(p)); end > off {
			clear(c.buf[off:end])
		}
	} else {
		clear(p) // a buffer not seen before, or no longer the reader's
		c.buf, c.dirty, off = p, 0, 0
	}
	n, err := c.Conn.Read(p)
	c.dirty = max(c.dirty, off+n)
	return n, err
}

// within reports whether p lies inside buf, and at which offset.
func within(buf, p []byte) (int, bool) {
	if len(buf) == 0 || len(p) == 0 {
		return 0, false
	}
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	s := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	if s < b || s+uintptr(len(p)) > b+uintptr(len(buf)) {
		return 0, false
	}
	return int(s - b), true
}

func (c *wipeConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil && n == len(p) {
		clear(p)
	}
	return n, err
}
