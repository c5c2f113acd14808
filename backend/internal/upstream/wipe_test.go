package upstream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// chunkConn is a net.Conn whose reads return the chunks in turn; writes are collected.
type chunkConn struct {
	net.Conn
	chunks  []string
	written bytes.Buffer
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, net.ErrClosed
	}
	n := copy(p, c.chunks[0])
	c.chunks = c.chunks[1:]
	return n, nil
}

func (c *chunkConn) Write(p []byte) (int, error) { return c.written.Write(p) }

// TestWipeConnRead checks that a bufio.Reader over a wipeConn keeps nothing of a response it
// consumed once it reads again, and still reads every byte right.
func TestWipeConnRead(t *testing.T) {
	secret := "data: {\"content\":\"secret output\"}\n"
	wc := &wipeConn{Conn: &chunkConn{chunks: []string{"HTTP/1.1 200 OK\n", secret, "x\n", "next response\n"}}}
	br := bufio.NewReaderSize(wc, 64)
	var got []string
	for range 4 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, line)
		if line == secret && !bytes.Contains(wc.buf, []byte("secret")) {
			t.Fatalf("the test is wrong: the buffer does not hold the response before the next read")
		}
	}
	if want := []string{"HTTP/1.1 200 OK\n", secret, "x\n", "next response\n"}; !equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	if bytes.Contains(wc.buf, []byte("secret")) {
		t.Errorf("the reader's buffer still holds the consumed response: %q", wc.buf)
	}
}

// TestWipeConnWrite checks that a complete write leaves nothing in the buffer written.
func TestWipeConnWrite(t *testing.T) {
	cc := &chunkConn{}
	wc := &wipeConn{Conn: cc}
	bw := bufio.NewWriterSize(wc, 64)
	body := []byte(`{"messages":[{"content":"secret prompt"}]}`)
	if _, err := bw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if cc.written.String() != string(body) {
		t.Fatalf("wrote %q", cc.written.String())
	}
	p := []byte("secret bytes")
	if _, err := wc.Write(p); err != nil || bytes.Contains(p, []byte("secret")) {
		t.Errorf("after a complete write the slice holds %q (err %v)", p, err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTransportTLS streams an event stream from a TLS server through NewTransport: the
// connection is dialed by dialTLS (HTTP/1.1, a wipeConn above TLS) and works as before.
func TestTransportTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", body)
		w.(http.Flusher).Flush()
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	srv.EnableHTTP2 = true // offered: dialTLS must still get HTTP/1.1
	srv.StartTLS()
	defer srv.Close()
	tr := NewTransport(time.Second, 0)
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for i := range 2 { // the second request reuses the connection
		want := fmt.Sprintf(`{"prompt":"secret %d"}`, i)
		resp, err := c.Post(srv.URL, "application/json", strings.NewReader(want))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || !strings.Contains(string(got), "data: "+want) {
			t.Fatalf("read %q, %v", got, err)
		}
		if resp.ProtoMajor != 1 {
			t.Errorf("HTTP/%d.%d, want HTTP/1.1", resp.ProtoMajor, resp.ProtoMinor)
		}
	}
}
