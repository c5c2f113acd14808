package remote

import (
	"context"
	"net"
)

// dialWiping dials the backend with a connection that clears each buffer it reads into first,
// which io.Reader allows ("Read may use all of p as scratch space"). The websocket reader's
// bufio.Reader hands its whole buffer to Read once it has consumed all it held, so the frames
// it read (model output) do not stay in it; under TLS the same clears the record buffer
// where crypto/tls decrypts in place. Frames the client writes are masked in place, so the
// write buffer holds no plain text once a frame is sent.
func dialWiping(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return wipeConn{c}, nil
}

type wipeConn struct{ net.Conn }

func (c wipeConn) Read(p []byte) (int, error) {
	clear(p)
	return c.Conn.Read(p)
}
