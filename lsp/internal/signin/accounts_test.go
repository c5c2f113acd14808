package signin

// The tests here run against a real codingplan-accounts process on SQLite (signintest).

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/signin/signintest"
	wire "github.com/codingplan/codingplan/shared"
)

// accountsBin is the codingplan-accounts binary TestMain builds.
var accountsBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "codingplan-signin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if accountsBin, err = signintest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// accountsSvc is signintest.Accounts with the sign-in these tests do.
type accountsSvc struct{ *signintest.Accounts }

func startAccounts(t *testing.T, settings ...string) accountsSvc {
	t.Helper()
	return accountsSvc{signintest.Start(t, accountsBin, settings...)}
}

// signIn runs a device sign-in against the service and approves it: the tokens it gives.
func (a accountsSvc) signIn(t *testing.T, svc *Service) Tokens {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	d, err := svc.StartDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Decide(t, d.UserCode, "approve")
	tok, err := svc.Await(ctx, nil, d)
	if err != nil {
		t.Fatalf("Await: %v", err)
	}
	return tok
}

// recv waits for a value from ch, at most 30 s.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

// tokenSink collects what a Keeper hands on and tells.
type tokenSink struct {
	set  chan wire.Secret
	lost chan string
}

func newSink() *tokenSink {
	return &tokenSink{set: make(chan wire.Secret, 16), lost: make(chan string, 16)}
}

func (s *tokenSink) config(file File, early time.Duration) KeeperConfig {
	return KeeperConfig{File: file, Early: early,
		Set:  func(t wire.Secret) { s.set <- t },
		Lost: func(m string) { s.lost <- m }}
}
