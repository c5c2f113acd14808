package upstream

import "net"

// wipeConn is a provider connection that clears, as it goes, what the HTTP client's buffers
// held of the exchanges on it: the request (prompt and code) and the response (model
// output). net/http keeps a bufio.Writer and a bufio.Reader per connection, kept alive
// between requests, which would otherwise hold the last request's and response's bytes for
// as long as the connection lives.
//
//   - Read clears p before reading into it, which io.Reader allows ("Read may use all of p
//     as scratch space"). The client's bufio.Reader hands its whole buffer to Read whenever
//     it has consumed all it held, so the last response is cleared when the connection goes
//     back to the pool and the client waits for the next one. Under TLS, the same clears the
//     record buffer where crypto/tls decrypts in place.
//   - Write clears p once all of it was written. io.Writer asks a writer not to modify p; the
//     callers here do not read p again after a complete write: net/http's bufio.Writer
//     (Flush writes buf[:n] and starts over), the copy buffer io.Copy makes for a request
//     body, and crypto/tls's record buffers.
//
// With TLS, the bufio buffers sit above crypto/tls, where this connection does not see them
// (see docs/operations.md).
type wipeConn struct {
	net.Conn
}

func (c wipeConn) Read(p []byte) (int, error) {
	clear(p)
	return c.Conn.Read(p)
}

func (c wipeConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil && n == len(p) {
		clear(p)
	}
	return n, err
}
