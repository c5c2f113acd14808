package server

import (
	"strings"
	"testing"

	wire "github.com/codingplan/codingplan/shared"
)

// TestWireProblem checks what a code action tells the user for each kind of backend error.
func TestWireProblem(t *testing.T) {
	for _, tc := range []struct {
		err  wire.Error
		want []string
	}{
		{wire.Error{Code: wire.CodeRateLimited, Message: "the plan allows 1 stream at once", RetryAfterMS: 1500},
			[]string{"all in use", "the plan allows 1 stream at once", "Try again in 1.5 s."}},
		{wire.Error{Code: wire.CodeInternal, Message: "the server's lease store restarted", RetryAfterMS: 12000},
			[]string{"cannot serve this right now", "lease store restarted", "Try again in 12.0 s."}},
		{wire.Error{Code: wire.CodeInternal, Message: "internal error"},
			[]string{"the backend failed", "Try again."}},
	} {
		got := wireProblem(&tc.err)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("wireProblem(%s %q) = %q, want it to contain %q", tc.err.Code, tc.err.Message, got, w)
			}
		}
	}
}
