package remote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	wire "github.com/codingplan/codingplan/shared"
)

// TestBackendRevocation plays what codingplan-backend sends when the account's plan changes
// (a second hello) and when its access is revoked (an error without id, then close 1008; see
// docs/protocol.md, "Revocation and plan changes").
func TestBackendRevocation(t *testing.T) {
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", func(c *Config) { c.AuthRetry = time.Hour })
	fc := recv(t, b.conns, "a connection")
	h.waitLink(t, lspx.StateReady)

	fc.send(t, wire.ServerFrame{Type: wire.TypeHello, Protocol: wire.Version, ExpiresAt: time.Now().Add(time.Hour).Unix(),
		Plan: &wire.Plan{Name: "max", Concurrency: 10}, Models: []wire.Model{{Name: "large", Ops: []string{wire.OpCompletion}, Default: true}}})
	deadline := time.After(10 * time.Second)
	for s := h.c.Status(); s.Plan == nil || s.Plan.Name != "max"; s = h.c.Status() {
		select {
		case <-h.statuses:
		case <-deadline:
			t.Fatalf("status %+v, want plan max after the second hello", s)
		}
	}
	h.waitLink(t, lspx.StateReady)
	if m := h.c.DefaultModel(); m != "large" {
		t.Errorf("DefaultModel = %q, want the second hello's", m)
	}

	res := goStream(t, context.Background(), h.c, "x")
	fc.next(t)
	fc.send(t, wire.ServerFrame{Type: wire.TypeError, Code: wire.CodeUnauthorized,
		Message: "the sign-in was revoked or the account suspended; sign in again"})
	fc.wmu.Lock()
	_ = fc.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "unauthorized"),
		time.Now().Add(time.Second))
	fc.wmu.Unlock()
	if r := recv(t, res, "the stream"); r.err == nil {
		t.Fatal("the stream on a revoked connection succeeded")
	}
	s := h.waitStatus(t, lspx.StateSignedOut)
	if !strings.Contains(s.Message, "revoked") {
		t.Errorf("status message %q, want the backend's reason", s.Message)
	}
	_, err := h.c.Stream(context.Background(), wire.ClientFrame{Op: wire.OpCompletion, Completion: &wire.Completion{}}, nil)
	if !errors.Is(err, ErrSignedOut) {
		t.Fatalf("err = %v, want ErrSignedOut: the revoked token is not used again", err)
	}
}

// TestOnRefused: the owner of the connection is told of each token the backend refuses for
// itself, in band (token_expired, then close 1008) and at the upgrade (401), so it can get a
// fresh one; the fresh one reconnects at once, with no wait for AuthRetry.
func TestOnRefused(t *testing.T) {
	type refusal struct {
		token wire.Secret
		code  wire.Code
	}
	b := newFakeBackend(t, "tok")
	h := start(t, b, "tok", func(c *Config) { c.AuthRetry = time.Hour })
	told := make(chan refusal, 8)
	h.c.OnRefused(func(token wire.Secret, code wire.Code) { told <- refusal{token, code} })
	fc := recv(t, b.conns, "a connection")
	h.waitLink(t, lspx.StateReady)

	fc.send(t, wire.ServerFrame{Type: wire.TypeError, Code: wire.CodeTokenExpired, Message: "the token expired"})
	fc.wmu.Lock()
	_ = fc.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "expired"),
		time.Now().Add(time.Second))
	fc.wmu.Unlock()
	if got, want := recv(t, told, "the in-band refusal"), (refusal{"tok", wire.CodeTokenExpired}); got != want {
		t.Errorf("told %v, want %v", got, want)
	}

	b.mu.Lock()
	b.tokens["fresh"] = true
	b.mu.Unlock()
	h.c.SetToken("fresh")
	recv(t, b.conns, "a connection with the fresh token")
	h.waitLink(t, lspx.StateReady)

	h.c.SetToken("forged")
	if got, want := recv(t, told, "the refusal at the upgrade"), (refusal{"forged", wire.CodeUnauthorized}); got != want {
		t.Errorf("told %v, want %v", got, want)
	}
	select {
	case r := <-told:
		t.Errorf("told again: %v", r)
	default:
	}
}
