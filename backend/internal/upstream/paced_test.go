//go:build linux

package upstream

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestPacedConn checks a paced connection delivers a response whole and in order, including a
// tail far below the low-water mark on a connection that stays open (the case a stuck
// SO_RCVLOWAT would hang), waits out the window between reads once past paceAfterBytes, and
// leaves the low-water mark at one byte after each read.
func TestPacedConn(t *testing.T) {
	const window = 20 * time.Millisecond
	raw, server := tcpPair(t)
	p := newPacedConn(raw, window)
	if runtime.GOOS == "linux" && p.rc == nil {
		t.Fatal("no SO_RCVLOWAT on a TCP connection")
	}
	if _, err := p.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}

	var want bytes.Buffer
	want.Write(bytes.Repeat([]byte("h"), paceAfterBytes))
	for i := range 200 {
		want.WriteString(string(rune('a' + i%26)))
	}
	want.WriteString("tail")
	firstRead := make(chan struct{})
	go func() {
		b := want.Bytes()
		_, _ = server.Write(b[:paceAfterBytes])
		<-firstRead
		for _, c := range b[paceAfterBytes : len(b)-4] {
			_, _ = server.Write([]byte{c})
		}
		_, _ = server.Write(b[len(b)-4:]) // and the connection stays open
	}()

	_ = p.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 0, want.Len())
	buf := make([]byte, 64<<10)
	var paced []time.Duration // how long each read after the first 8 KiB took from the previous one's start
	for len(got) < want.Len() {
		prev := p.last
		size := len(buf)
		if len(got) < paceAfterBytes {
			size = paceAfterBytes - len(got) // the rest comes only after this
		}
		n, err := p.Read(buf[:size])
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read after %d of %d bytes: %v", len(got), want.Len(), err)
		}
		if p.read-n >= paceAfterBytes {
			paced = append(paced, time.Since(prev))
		}
		if v := lowWater(t, p); v != 1 {
			t.Fatalf("SO_RCVLOWAT %d after a read, want 1", v)
		}
		if len(got) == paceAfterBytes {
			close(firstRead)
		}
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %d bytes, not the %d sent in order", len(got), want.Len())
	}
	t.Logf("paced reads: %v", paced)
	if len(paced) == 0 {
		t.Fatal("no read after the first 8 KiB")
	}
	for i, d := range paced {
		if d < window {
			t.Errorf("paced read %d came %v after the previous one started, want at least %v", i, d, window)
		}
	}

	// A new request starts a new count: its first bytes are read as they come.
	if _, err := p.Write([]byte("next request")); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = server.Write([]byte("x")) }()
	if _, err := io.ReadFull(p, buf[:1]); err != nil {
		t.Fatal(err)
	}
	if p.read != 1 {
		t.Errorf("bytes counted after a new request: %d, want 1", p.read)
	}
}

func lowWater(t *testing.T, p *pacedConn) int {
	t.Helper()
	if p.rc == nil {
		return 1
	}
	v := 0
	var gerr error
	if err := p.rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}

// TestPacedConnWriteEndsWait checks a pacing wait ends when the next request is written, so
// the answer to a request sent right after a long response is not held back by the window.
func TestPacedConnWriteEndsWait(t *testing.T) {
	raw, server := tcpPair(t)
	p := newPacedConn(raw, time.Hour) // a wait that only a Write can end within the test
	if _, err := p.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	long := bytes.Repeat([]byte("r"), paceAfterBytes)
	go func() { _, _ = server.Write(long) }()
	if _, err := io.ReadFull(p, make([]byte, len(long))); err != nil {
		t.Fatal(err)
	}
	// The response is over; the HTTP client's next Read (its wait for the next answer) now
	// starts within the window and waits.
	waiting := make(chan struct{})
	p.onWait = func() { close(waiting) }
	got := make(chan error, 1)
	go func() {
		b := make([]byte, 16)
		n, err := p.Read(b)
		if err == nil && string(b[:n]) != "answer" {
			err = errors.New("read " + string(b[:n]))
		}
		got <- err
	}()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the read after a long response did not wait")
	}
	if _, err := p.Write([]byte("next request")); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Write([]byte("answer")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read still waits out its window after the next request was written")
	}
}
