package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/tokens"
)

// startServe starts `codingplan-accounts serve` on a free port with the runner's database and
// returns its base URL; the cleanup stops it with SIGTERM and checks that it exits cleanly.
func startServe(t *testing.T, r *runner, args ...string) string {
	t.Helper()
	c := exec.Command(binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	c.Env = r.env
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() {
		c.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			c.Process.Kill()
			<-exited
			t.Error("serve did not stop on SIGTERM")
		}
	})
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve ended before its banner:\n%s", stderr.String())
			}
			if m := regexp.MustCompile(`listening on (http://[0-9.:]+)`).FindStringSubmatch(l); m != nil {
				go func() {
					for range lines { // drain the rest of the banner
					}
				}()
				return m[1]
			}
		case <-deadline:
			t.Fatalf("no banner:\n%s", stderr.String())
		}
	}
}

// post sends a form (body url.Values) or JSON (anything else) and decodes a JSON answer.
func post(t *testing.T, c *http.Client, u string, body any) (int, map[string]any) {
	t.Helper()
	var resp *http.Response
	var err error
	if form, ok := body.(url.Values); ok {
		resp, err = c.PostForm(u, form)
	} else {
		b, _ := json.Marshal(body)
		resp, err = c.Post(u, "application/json", bytes.NewReader(b))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out) // 204s have no body
	return resp.StatusCode, out
}

// TestDeviceFlow: a device sign-in end to end over HTTP against the serve process: device code,
// approval by a signed-in web session, token, the token verified by the routing plane's
// Verifier against the service's JWKS, then a refresh (and the old refresh token's reuse
// ending the sign-in).
func TestDeviceFlow(t *testing.T) {
	r := newRunner(t)
	id := strings.TrimSpace(r.must("correct horse battery\n", "account", "create", "--email", "ada@example.com", "--plan", "pro", "--password-stdin"))
	base := startServe(t, r)
	ctx := t.Context()
	plain := &http.Client{Timeout: 10 * time.Second}

	code, dev := post(t, plain, base+"/v1/device/code", url.Values{"client_id": {"vscode"}})
	deviceCode, _ := dev["device_code"].(string)
	userCode, _ := dev["user_code"].(string)
	if code != 200 || deviceCode == "" || userCode == "" || !strings.HasSuffix(dev["verification_uri"].(string), "/device") {
		t.Fatalf("device code: %d %v", code, dev)
	}

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	if code, body := post(t, browser, base+"/v1/session", map[string]string{"email": "ada@example.com", "password": "correct horse battery"}); code != 200 {
		t.Fatalf("sign-in: %d %v", code, body)
	}
	if code, body := post(t, browser, base+"/v1/device/approve", map[string]string{"user_code": "ZZZZ-ZZZZ", "action": "approve"}); code != 404 {
		t.Errorf("approving an unknown code: %d %v", code, body)
	}
	if code, body := post(t, browser, base+"/v1/device/approve", map[string]string{"user_code": userCode, "action": "approve"}); code != 204 {
		t.Fatalf("approve: %d %v", code, body)
	}

	code, tok := post(t, plain, base+"/v1/token", url.Values{"grant_type": {tokens.GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {"vscode"}})
	access, _ := tok["access_token"].(string)
	refresh, _ := tok["refresh_token"].(string)
	if code != 200 || access == "" || refresh == "" {
		t.Fatalf("token: %d %v", code, tok)
	}

	v, err := auth.NewVerifier(ctx, auth.Config{JWKS: base + "/.well-known/jwks.json"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := v.Verify(ctx, access)
	if err != nil {
		t.Fatalf("the backend's verifier refuses the token: %v", err)
	}
	if claims.Subject != id || claims.Plan != "pro" || claims.SID == "" {
		t.Errorf("claims: sub %q plan %q sid %q, want %q pro and a sid", claims.Subject, claims.Plan, claims.SID, id)
	}

	code, tok2 := post(t, plain, base+"/v1/token", url.Values{"grant_type": {tokens.GrantRefresh}, "refresh_token": {refresh}})
	access2, _ := tok2["access_token"].(string)
	if code != 200 || access2 == "" || tok2["refresh_token"] == refresh {
		t.Fatalf("refresh: %d %v", code, tok2)
	}
	if c2, err := v.Verify(ctx, access2); err != nil || c2.SID != claims.SID {
		t.Errorf("refreshed token: %v, sid %v want %q", err, c2, claims.SID)
	}
	if code, body := post(t, plain, base+"/v1/token", url.Values{"grant_type": {tokens.GrantRefresh}, "refresh_token": {refresh}}); code != 400 || body["error"] != "invalid_grant" {
		t.Errorf("reusing the old refresh token: %d %v", code, body)
	}
	if out := r.must("", "signin", "list", id, "--json"); !strings.Contains(out, `"revoked"`) {
		t.Errorf("the reused refresh token did not end the sign-in: %s", out)
	}

	// The API-key grant, with a key the CLI made.
	key := strings.TrimSpace(r.must("", "key", "create", id, "--name", "ci"))
	code, tok3 := post(t, plain, base+"/v1/token", url.Values{"grant_type": {tokens.GrantAPIKey}, "api_key": {key}})
	if code != 200 {
		t.Fatalf("api key grant: %d %v", code, tok3)
	}
	if _, err := v.Verify(ctx, tok3["access_token"].(string)); err != nil {
		t.Errorf("api key token: %v", err)
	}
}

// TestKeysRotate: keys rotate adds a signing key; keys list shows both; the JWKS publishes both.
func TestKeysRotate(t *testing.T) {
	r := newRunner(t)
	kid := strings.TrimSpace(r.must("", "keys", "rotate"))
	var keys []map[string]any
	if err := json.Unmarshal([]byte(r.must("", "keys", "list", "--json")), &keys); err != nil || len(keys) != 2 {
		t.Fatalf("keys list after the first rotate (the first key and the new one): %v %v", keys, err)
	}
	if out := r.must("", "keys", "list"); !strings.Contains(out, kid) || !strings.Contains(out, "RETIRED") {
		t.Errorf("keys list: %q", out)
	}
	base := startServe(t, r)
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc auth.JWKS
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || len(doc.Keys) != 2 {
		t.Errorf("jwks after rotate: %+v %v", doc, err)
	}
}
