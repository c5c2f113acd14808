package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/lsp/internal/signin/signintest"
)

// TestSignInRevokedWhileConnected is issue 13's report, end to end: codingplan-lsp signs in
// with the device flow against a real codingplan-accounts (the code approved through its API),
// connects to a backend that trusts the account service's keys, and keeps its sign-in in the
// user's configuration directory. When the sign-in is revoked at the account service, the
// backend closes the connection (through Valkey); the server tries a refresh, which the account
// service refuses, and then the status says signed out and the user is told once, with a Sign
// in action, instead of the status sitting on "connecting".
func TestSignInRevokedWhileConnected(t *testing.T) {
	addr := valkeyAddr(t)
	prefix := "e2e-" + randHex(6)
	acc := signintest.Start(t, filepath.Join(binDir, "codingplan-accounts"),
		"VALKEY="+addr, "VALKEY_PREFIX="+prefix)
	s := startSystem(t, options{prefix: prefix, reply: "a + b",
		extraArgs: []string{"--jwks", acc.URL + "/.well-known/jwks.json"}})

	codes := make(chan string, 4)
	prompts := make(chan string, 4)
	ed := s.startEditorOpts(map[string]any{"accountsUrl": acc.URL}, editorOptions{
		onRequest: func(method string, params json.RawMessage) (any, error) {
			if method != "window/showMessageRequest" {
				return nil, nil
			}
			var p struct {
				Message string `json:"message"`
				Actions []struct {
					Title    string `json:"title"`
					UserCode string `json:"userCode"`
				} `json:"actions"`
			}
			if err := json.Unmarshal(params, &p); err != nil || len(p.Actions) == 0 {
				return nil, nil
			}
			switch a := p.Actions[0]; a.Title {
			case "Copy code and open":
				codes <- a.UserCode
				return map[string]any{"title": a.Title, "opened": true}, nil
			case "Sign in":
				prompts <- p.Message
			}
			return nil, nil // the user dismisses it
		},
	})
	ctx := testContext(t)

	_, done := ed.start("workspace/executeCommand", map[string]any{"command": "codingplan.signIn"})
	var code string
	select {
	case code = <-codes:
	case <-ctx.Done():
		t.Fatal("no device code was shown")
	}
	acc.Decide(t, code, "approve")
	var status struct {
		State string `json:"state"`
	}
	if err := ed.wait(ctx, done, &status); err != nil {
		t.Fatalf("codingplan.signIn: %v", err)
	}
	if err := ed.waitReady(ctx); err != nil {
		t.Fatalf("not ready after the sign-in: %v", err)
	}
	file := filepath.Join(s.dir, "home", ".config", "codingplan", "signin.json")
	if info, err := os.Stat(file); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the sign-in file: %v, %v; want mode 600", info, err)
	}

	// Revoke the sign-in at the account service, as the account page would.
	var signins []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(acc.Admin(t, "", "signin", "list", acc.Email, "--json")), &signins); err != nil || len(signins) != 1 {
		t.Fatalf("signin list: %v %v", signins, err)
	}
	acc.Admin(t, "", "signin", "revoke", acc.Email, signins[0].ID, "--valkey", addr, "--valkey-prefix", prefix)

	select {
	case msg := <-prompts:
		if !strings.Contains(msg, "sign in again") {
			t.Errorf("told %q", msg)
		}
	case <-ctx.Done():
		t.Fatal("the user was never told the sign-in ended")
	}
	if _, err := ed.waitNote(ctx, "codingplan/status", func(raw json.RawMessage) bool {
		return strings.Contains(string(raw), `"state":"signedOut"`)
	}); err != nil {
		t.Fatalf("the status never said signed out: %v", err)
	}
	// Told once: no second prompt, and no reconnecting, while the connection's retries would
	// have happened several times over (its backoff starts at 250 ms).
	select {
	case msg := <-prompts:
		t.Errorf("told a second time: %q", msg)
	case <-time.After(2 * time.Second):
	}
	var now struct {
		State string `json:"state"`
	}
	if err := ed.call(ctx, "workspace/executeCommand", map[string]any{"command": "codingplan.status"}, &now); err != nil || now.State != "signedOut" {
		t.Errorf("status %q, %v; want signedOut", now.State, err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the ended sign-in's file: %v, want it deleted", err)
	}
}
