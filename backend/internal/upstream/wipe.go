package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"
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

// dialTLS returns the transport's TLS dialer: TLS over dial's connection (a wipeConn, which
// clears the record buffer crypto/tls decrypts into), under one more wipeConn, which clears
// net/http's buffers above TLS, where the plain text is. net/http speaks HTTP/2 only over a
// *tls.Conn it can see, so ALPN offers http/1.1 alone. With a proxy, net/http dials and wraps
// TLS itself, without this. The handshake is bounded by timeout; t.TLSClientConfig applies.
func dialTLS(t *http.Transport, dial func(ctx context.Context, network, addr string) (net.Conn, error),
	timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg := t.TLSClientConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
		cfg.NextProtos = []string{"http/1.1"}
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		hctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, err
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
			tc.Close()
			return nil, fmt.Errorf("tls: the server chose %q; only http/1.1 is offered", p)
		}
		return &wipeConn{Conn: tc}, nil
	}
}
