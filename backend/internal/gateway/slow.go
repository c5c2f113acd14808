package gateway

import (
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/shared/clock"
)

// Slow consumers. A client that stops reading is noticed by the send queue only once the
// kernel's socket buffers on both ends are full, which at a model's pace takes many seconds
// (megabytes on loopback). So the writer also asks the client, with a websocket ping behind the
// output it writes, to show it read that output: the client's pong comes back only once it has
// read everything before the ping. A ping unanswered for slow_consumer means the client has not
// read output that is slow_consumer old; its streams are then cancelled (errSlowConsumer),
// which cancels their provider calls and releases their leases.
//
// One probe is out at a time, and probes go at most every slow_consumer/8 (probeGap), so a
// stream costs a few pings a second, not one per write. The client stopped reading at T: the
// last probe it answered was written before T, so the next one is written by T + probeGap (and
// a round trip) as long as output flows; it expires slow_consumer - probeGap after it was
// written, which is by T + slow_consumer. A reading client answers within a round trip.

// probe is the state of a session's outstanding read probe.
type probe struct {
	mu    sync.Mutex
	seq   uint64      // of the outstanding probe; 0 when none is out
	last  uint64      // the last seq used
	timer clock.Timer // fires slow_consumer - probeGap after the outstanding probe was written
	sent  time.Time   // when the last probe was written
	ended bool        // the session ended: no more timers
}

// probePrefix starts the payload of a probe ping; keepalive pings carry no payload.
const probePrefix = "r"

// probeGap is the least time between two probes.
func probeGap(window time.Duration) time.Duration { return window / 8 }

// sendProbe writes a probe ping (on the writer's goroutine) unless one is out already or the
// last one went less than probeGap ago.
func (s *session) sendProbe() error {
	window := s.srv.cfg.SlowConsumer
	p := &s.probe
	p.mu.Lock()
	now := s.srv.deps.Clock.Now()
	if p.seq != 0 || p.ended || now.Sub(p.sent) < probeGap(window) {
		p.mu.Unlock()
		return nil
	}
	p.last++
	seq := p.last
	p.seq, p.sent = seq, now
	p.timer = s.srv.deps.Clock.AfterFunc(window-probeGap(window), func() { s.probeExpired(seq) })
	p.mu.Unlock()
	payload := strconv.AppendUint([]byte(probePrefix), seq, 10)
	return s.conn.WriteControl(websocket.PingMessage, payload, time.Now().Add(s.srv.cfg.WriteTimeout))
}

// probeAnswered handles a pong's payload (on the reader's goroutine).
func (s *session) probeAnswered(payload string) {
	if len(payload) <= len(probePrefix) || payload[:len(probePrefix)] != probePrefix {
		return // a keepalive pong
	}
	seq, err := strconv.ParseUint(payload[len(probePrefix):], 10, 64)
	if err != nil {
		return
	}
	p := &s.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq == p.seq {
		p.seq = 0
		p.timer.Stop()
	}
}

// probeExpired cancels the session's streams when probe seq is still unanswered.
func (s *session) probeExpired(seq uint64) {
	p := &s.probe
	p.mu.Lock()
	if p.seq != seq || p.ended {
		p.mu.Unlock()
		return
	}
	// The next output sends a fresh probe, so streams started later get their own window.
	p.seq = 0
	p.mu.Unlock()
	s.mu.Lock()
	n := len(s.streams)
	for _, st := range s.streams {
		st.cancel(errSlowConsumer)
	}
	s.mu.Unlock()
	if n > 0 {
		s.log.Info("slow consumer: output unread for slow_consumer; cancelling streams", "streams", n, "queued", len(s.send))
	}
}

// stopProbe stops the probe's timer for good.
func (s *session) stopProbe() {
	p := &s.probe
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ended = true
	if p.timer != nil {
		p.timer.Stop()
	}
}
