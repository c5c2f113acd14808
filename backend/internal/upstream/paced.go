package upstream

import (
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// paceAfterBytes is how much of a response is read as it arrives before pacing starts:
	// the first line or two of a completion, which the user is waiting for.
	paceAfterBytes = 8 << 10
	// paceLowWater is what the kernel lets queue up before it wakes the process while a
	// paced connection waits out its window (SO_RCVLOWAT).
	paceLowWater = 16 << 10
)

// pacedConn reads a fast stream in batches. Once a response (what follows a Write, which
// sends a request) brought paceAfterBytes, a Read that starts less than window after the
// previous one first waits out the rest of the window, so the events that arrive back to
// back are read, decoded, relayed and written to the client together: one read and one
// write for many tokens instead of one each, which is most of a relay's CPU on a fast
// stream. While it waits, SO_RCVLOWAT (where the system has it) keeps the kernel from waking
// the process for each small segment. A stream slower than one event per window is never
// delayed: its reads are already further apart. An event waits at most one window.
//
// Reads are not concurrent (the HTTP client reads a connection from one goroutine at a
// time, handing it over through channels); writes may run beside them.
type pacedConn struct {
	net.Conn
	window time.Duration
	rc     syscall.RawConn // nil: no SO_RCVLOWAT
	writes atomic.Uint64   // Writes so far

	seen uint64    // writes when the current response's count started
	read int       // bytes read since
	last time.Time // when the previous Read started
}

func newPacedConn(c net.Conn, window time.Duration) *pacedConn {
	p := &pacedConn{Conn: c, window: window}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil && setLowWater(rc, 1) == nil {
			p.rc = rc
		}
	}
	return p
}

func (p *pacedConn) Write(b []byte) (int, error) {
	p.writes.Add(1)
	return p.Conn.Write(b)
}

func (p *pacedConn) Read(b []byte) (int, error) {
	now := time.Now()
	if w := p.writes.Load(); w != p.seen {
		p.seen, p.read = w, 0
	}
	if p.read >= paceAfterBytes {
		if wait := p.window - now.Sub(p.last); wait > 0 {
			p.sleep(wait)
			now = now.Add(wait)
		}
	}
	p.last = now
	n, err := p.Conn.Read(b)
	p.read += n
	return n, err
}

// sleep waits d with the kernel's low-water mark raised, then lowers it to one byte again
// so that the Read that follows returns whatever came, or blocks until anything does.
func (p *pacedConn) sleep(d time.Duration) {
	raised := p.rc != nil && setLowWater(p.rc, paceLowWater) == nil
	time.Sleep(d)
	if raised {
		_ = setLowWater(p.rc, 1) // fails only on a closed socket, which the Read reports
	}
}
