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
// delayed: its reads are already further apart. An event waits at most one window, and a
// Write (the next request on a kept-alive connection) or Close ends the wait at once.
//
// Reads are not concurrent (the HTTP client reads a connection from one goroutine at a
// time, handing it over through channels); writes may run beside them.
type pacedConn struct {
	net.Conn
	window time.Duration
	rc     syscall.RawConn // nil: no SO_RCVLOWAT
	writes atomic.Uint64   // Writes so far

	wake chan struct{} // a Write or Close ends a pacing wait

	seen  uint64      // writes when the current response's count started
	read  int         // bytes read since
	last  time.Time   // when the previous Read started
	timer *time.Timer // the pacing wait's, reused

	onWait func() // tests: called when a pacing wait starts
}

func newPacedConn(c net.Conn, window time.Duration) *pacedConn {
	p := &pacedConn{Conn: c, window: window, wake: make(chan struct{}, 1)}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil && setLowWater(rc, 1) == nil {
			p.rc = rc
		}
	}
	return p
}

func (p *pacedConn) Write(b []byte) (int, error) {
	p.writes.Add(1)
	p.wakeUp()
	return p.Conn.Write(b)
}

func (p *pacedConn) Close() error {
	p.wakeUp()
	return p.Conn.Close()
}

func (p *pacedConn) wakeUp() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
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
	select { // a wake-up from before this wait
	case <-p.wake:
	default:
	}
	if p.writes.Load() != p.seen {
		return // a request went out since Read looked: its answer is not to wait
	}
	raised := p.rc != nil && setLowWater(p.rc, paceLowWater) == nil
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	if p.onWait != nil {
		p.onWait()
	}
	select {
	case <-p.timer.C:
	case <-p.wake:
		p.timer.Stop()
	}
	if raised {
		_ = setLowWater(p.rc, 1) // fails only on a closed socket, which the Read reports
	}
}
