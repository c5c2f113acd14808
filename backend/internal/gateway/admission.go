package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/codingplan/codingplan/backend/internal/conns"
	"github.com/codingplan/codingplan/backend/internal/throttle"
	wire "github.com/codingplan/codingplan/shared"
	"github.com/codingplan/codingplan/shared/clock"
)

// Conns counts each user's websockets across nodes (*conns.Counter). Acquire admits one more
// connection of user while fewer than limit are open on all nodes together; over the limit its
// error is a *conns.LimitError. When it cannot tell (Valkey unreachable) it admits. Release is
// called once for each admitted connection, when it closes.
type Conns interface {
	Acquire(ctx context.Context, user string, limit int) error
	Release(user string)
}

// Reasons for Observer.Refused: which limit refused an upgrade.
const (
	RefusedAddress  = "address"   // too many upgrades from one client address (Config.UpgradesPerMinute)
	RefusedUserNode = "user_node" // the user's connections on this node (Config.MaxConnsPerNode)
	RefusedUser     = "user"      // the user's connections on all nodes (Config.MaxConns)
)

// connRetry is the Retry-After of a refusal for connections open: a slot frees only when the
// user closes an editor, so a client has no reason to try again soon.
const connRetry = 30 * time.Second

// admission holds the node-local limits on upgrades: a token bucket per client address and a
// count of each user's connections on this node.
type admission struct {
	addrs *throttle.Limiter // nil: no rate limit

	mu   sync.Mutex
	open map[string]int // connections of each user on this node
}

func newAdmission(cfg Config, clk clock.Clock) *admission {
	return &admission{addrs: throttle.New(cfg.UpgradesPerMinute, cfg.UpgradeBurst, clk.Now), open: map[string]int{}}
}

// take counts one more connection of user unless limit (0: none) are open; it returns how
// many are open.
func (a *admission) take(user string, limit int) (open int, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.open[user]; limit > 0 && n >= limit {
		return n, false
	}
	a.open[user]++
	return a.open[user], true
}

func (a *admission) give(user string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open[user]--; a.open[user] <= 0 {
		delete(a.open, user)
	}
}

// allowAddr takes a token from the client address's bucket, or answers 429 and returns false.
func (s *Server) allowAddr(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := s.admission.addrs.Allow(addrKey(r.RemoteAddr))
	if !ok {
		s.log.Debug("upgrade rejected: too many from this address", "retry_after", wait)
		s.refuse(w, RefusedAddress, wait, fmt.Sprintf(
			"too many connection attempts from this address; retry after %d s (a client reconnecting in a loop, or many behind one address)", throttle.Seconds(wait)))
	}
	return ok
}

// addrKey is the rate limit's key of a client address: the IP, or for IPv6 its /64, which one
// client usually has whole.
func addrKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return remote
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// admitConn counts the connection against the user's limits on this node and on all nodes; it
// returns the function that releases it, or answers 429 and returns false.
func (s *Server) admitConn(ctx context.Context, w http.ResponseWriter, user string) (release func(), ok bool) {
	a := s.admission
	if n, ok := a.take(user, s.cfg.MaxConnsPerNode); !ok {
		s.log.Info("upgrade rejected: connections per server", "user", user, "open", n)
		s.refuse(w, RefusedUserNode, connRetry, fmt.Sprintf(
			"this account has %d connections open to this server (the limit per server); close editors you no longer use", n))
		return nil, false
	}
	if s.deps.Conns == nil || s.cfg.MaxConns <= 0 {
		return func() { a.give(user) }, true
	}
	if err := s.deps.Conns.Acquire(ctx, user, s.cfg.MaxConns); err != nil {
		a.give(user)
		var le *conns.LimitError
		if !errors.As(err, &le) { // the request's context ended: the client went away
			writeReject(w, http.StatusServiceUnavailable, wire.CodeInternal, "the upgrade was cancelled; connect again")
			return nil, false
		}
		s.log.Info("upgrade rejected: connections per account", "user", user, "open", le.Open)
		s.refuse(w, RefusedUser, connRetry, fmt.Sprintf(
			"this account has %d connections open (the limit); close editors you no longer use", le.Open))
		return nil, false
	}
	return func() {
		s.deps.Conns.Release(user)
		a.give(user)
	}, true
}

// refuse answers 429 rate_limited with Retry-After and counts the refusal.
func (s *Server) refuse(w http.ResponseWriter, reason string, retry time.Duration, msg string) {
	s.deps.Observer.Refused(reason)
	throttle.RetryAfter(w, retry)
	writeReject(w, http.StatusTooManyRequests, wire.CodeRateLimited, msg)
}
