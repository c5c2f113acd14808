package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/revoke"
	wire "github.com/codingplan/codingplan/shared"
)

// Revocations reads the denylist (revoke.Checker): whether a token of sub with sid issued at
// issued was revoked, and the account's plan if it changed since.
type Revocations interface {
	Check(ctx context.Context, sub, sid string, issued time.Time) (revoke.Status, error)
}

// checkTimeout bounds one denylist read: an upgrade or auth frame waits no longer for it.
const checkTimeout = 500 * time.Millisecond

// Fixed texts of revocation errors.
const (
	msgRevokedToken = "the token was revoked; sign in again"
	msgRevokedConn  = "the sign-in was revoked or the account suspended; sign in again"
	msgPlanGone     = "the account's plan changed to one this server does not offer"
)

// errRevoked ends the streams of a connection closed by a revocation.
var errRevoked = errors.New("access revoked")

// check reads the denylist for c. When it cannot (Valkey unreachable or slow) it fails open:
// the token's own exp (15 minutes) bounds what a revoked token can still do, and the pub/sub
// message closes its connections once Valkey is back.
func (s *Server) check(ctx context.Context, c *auth.Claims) revoke.Status {
	if s.deps.Revocations == nil {
		return revoke.Status{}
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	st, err := s.deps.Revocations.Check(ctx, c.Subject, c.SID, issued(c))
	if err != nil {
		s.deps.Observer.RevocationCheckFailed()
		s.log.Warn("revocation check failed; token allowed (fail open)", "user", c.Subject, "err", err)
		return revoke.Status{}
	}
	return st
}

func issued(c *auth.Claims) time.Time {
	if c.IssuedAt == nil {
		return time.Time{}
	}
	return c.IssuedAt.Time
}

// admit decides what a verified token gets: its plan (or the one it was changed to since) and
// that plan's concurrency, or the error that refuses it.
func (s *Server) admit(ctx context.Context, c *auth.Claims) (plan string, limit int, e *wire.Error) {
	st := s.check(ctx, c)
	if st.Revoked {
		return "", 0, wire.Errorf(wire.CodeUnauthorized, msgRevokedToken)
	}
	plan = c.Plan
	if st.Plan != "" {
		plan = st.Plan
	}
	limit, ok := s.cfg.Plans[plan]
	if !ok {
		return "", 0, wire.Errorf(wire.CodeQuotaExceeded, "the token's plan is not offered by this server")
	}
	return plan, limit, nil
}

// Handle implements revoke.Handler: a revoke event closes the account's matching connections
// on this node, a plan event gives them the new plan.
func (s *Server) Handle(ctx context.Context, e revoke.Event) {
	s.mu.Lock()
	s.events++
	list := make([]*session, 0, len(s.byUser[e.Sub]))
	for sess := range s.byUser[e.Sub] {
		list = append(list, sess)
	}
	s.mu.Unlock()
	inUse := 0
	if e.Kind == revoke.KindPlan && len(list) > 0 {
		inUse = s.inUse(ctx, e.Sub)
	}
	closed := 0
	for _, sess := range list {
		sid, iat := sess.token()
		newer := iat.UnixMilli() > e.At // issued after the event: the token reflects it
		switch {
		case e.Kind == revoke.KindRevoke && e.SID != "":
			if sid == e.SID {
				sess.revoke(wire.Errorf(wire.CodeUnauthorized, msgRevokedConn))
				closed++
			}
		case e.Kind == revoke.KindRevoke && !newer:
			sess.revoke(wire.Errorf(wire.CodeUnauthorized, msgRevokedConn))
			closed++
		case e.Kind == revoke.KindPlan && !newer:
			if !sess.changePlan(e.Plan, inUse) {
				closed++
			}
		}
	}
	s.log.Info("revocation event", "user", e.Sub, "kind", e.Kind, "sid", e.SID, "connections", len(list), "closed", closed)
}

// Resync implements revoke.Handler: after a (re)subscription every open connection is checked
// against the denylist, for the events this node missed.
func (s *Server) Resync(ctx context.Context) {
	s.mu.Lock()
	s.events++
	list := s.sessionsLocked()
	s.mu.Unlock()
	for _, sess := range list {
		if ctx.Err() != nil {
			return
		}
		sess.recheck(ctx)
	}
}

// recheck applies the denylist to the session's current token.
func (s *session) recheck(ctx context.Context) {
	rv := s.srv.deps.Revocations
	if rv == nil {
		return
	}
	s.mu.Lock()
	sid, iat, plan := s.sid, s.issued, s.plan
	s.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	st, err := rv.Check(cctx, s.user, sid, iat)
	switch {
	case err != nil:
		s.srv.deps.Observer.RevocationCheckFailed()
		s.log.Warn("revocation recheck failed", "err", err)
	case st.Revoked:
		s.revoke(wire.Errorf(wire.CodeUnauthorized, msgRevokedConn))
	case st.Plan != "" && st.Plan != plan:
		s.changePlan(st.Plan, s.srv.inUse(ctx, s.user))
	}
}

// token returns the current token's sid and iat.
func (s *session) token() (sid string, iat time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sid, s.issued
}

// revoke sends e and closes the connection (1008), cancelling its streams: their provider
// calls stop and their leases are released.
func (s *session) revoke(e *wire.Error) {
	if s.revoked.Swap(true) {
		return
	}
	s.log.Info("connection revoked", "code", e.Code)
	s.srv.deps.Observer.Revoked()
	s.closeWith(marshal(wire.ErrorFrame("", e)), websocket.ClosePolicyViolation, string(e.Code))
	s.mu.Lock()
	for _, st := range s.streams {
		st.cancel(errRevoked)
	}
	s.mu.Unlock()
}

// changePlan moves the session to plan and tells the client with a new hello (inUse is the
// account's running streams); a plan this server does not offer closes the connection instead
// (false). It never waits: a client whose send queue is full misses the hello, not the plan.
func (s *session) changePlan(plan string, inUse int) bool {
	limit, ok := s.srv.cfg.Plans[plan]
	if !ok {
		s.revoke(wire.Errorf(wire.CodeQuotaExceeded, msgPlanGone))
		return false
	}
	s.mu.Lock()
	s.plan, s.limit = plan, limit
	s.mu.Unlock()
	s.log.Info("plan changed", "plan", plan)
	s.tryHello(inUse, "plan change")
	return true
}

// tryHello sends a new hello (inUse is the account's running streams) unless the send queue
// is full: it never waits, so a client that does not read misses the hello, not the change.
func (s *session) tryHello(inUse int, why string) {
	s.mu.Lock()
	hello := s.helloLocked(inUse)
	s.mu.Unlock()
	if !s.trySend(hello) {
		putBuf(hello)
		s.log.Info("hello not sent: send queue full", "why", why)
	}
}

// inUse counts the account's running streams for a hello frame; 0 when unknown.
func (s *Server) inUse(ctx context.Context, user string) int {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	n, err := s.deps.Leases.InUse(ctx, user)
	if err != nil {
		s.log.Warn("lease count failed", "err", err)
		return 0
	}
	return n
}
