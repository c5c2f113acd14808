package signin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	wire "github.com/codingplan/codingplan/shared"
)

func TestDeviceFlow(t *testing.T) {
	a := startAccounts(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	t.Run("approved", func(t *testing.T) {
		svc := NewService(a.URL, "Visual Studio Code", nil, nil)
		d, err := svc.StartDevice(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.UserCode) != 9 || !strings.HasPrefix(d.VerificationURI, a.URL+"/device") ||
			!strings.Contains(d.CompleteURI, "user_code=") || d.Interval < 5*time.Second {
			t.Errorf("device %+v", d)
		}
		a.Decide(t, d.UserCode, "approve")
		tok, err := svc.Await(ctx, nil, d)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Access == "" || len(tok.Refresh) != 43 || time.Until(tok.Expires) < 10*time.Minute {
			t.Errorf("tokens: access %d bytes, refresh %d, expires in %v", len(tok.Access), len(tok.Refresh), time.Until(tok.Expires))
		}
		// The sign-in is listed under the editor's name.
		if out := a.Admin(t, "", "signin", "list", a.Email, "--json"); !strings.Contains(out, "visual-studio-code") {
			t.Errorf("signin list: %s, want client visual-studio-code", out)
		}
	})

	t.Run("denied", func(t *testing.T) {
		svc := NewService(a.URL, "neovim", nil, nil)
		d, err := svc.StartDevice(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a.Decide(t, d.UserCode, "deny")
		if _, err := svc.Await(ctx, nil, d); !errors.Is(err, ErrDenied) {
			t.Errorf("Await after deny: %v, want ErrDenied", err)
		}
	})

	t.Run("slow down", func(t *testing.T) {
		// A client that polls sooner than the interval gets slow_down and then waits 5 s
		// more, for good. Here it starts 10 ms apart: its third poll comes over 5 s after
		// the second.
		polls := make(chan poll, 16)
		svc := NewService(a.URL, "neovim", &http.Client{Transport: pollRecorder(polls)}, nil)
		d, err := svc.StartDevice(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d.Interval = 10 * time.Millisecond
		actx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { _, err := svc.Await(actx, nil, d); done <- err }()
		p1, p2, p3 := recv(t, polls, "poll 1"), recv(t, polls, "poll 2"), recv(t, polls, "poll 3")
		stop()
		if err := recv(t, done, "Await to end"); !errors.Is(err, context.Canceled) {
			t.Errorf("Await: %v, want context.Canceled", err)
		}
		if p1.code != "authorization_pending" || p2.code != "slow_down" {
			t.Errorf("polls answered %s, %s; want authorization_pending, slow_down", p1.code, p2.code)
		}
		if gap := p3.at.Sub(p2.at); gap < slowDown {
			t.Errorf("after slow_down the next poll came %v later, want at least %v", gap, slowDown)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		svc := NewService(a.URL, "neovim", nil, nil)
		d, err := svc.StartDevice(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		stop()
		if _, err := svc.Await(cctx, nil, d); !errors.Is(err, context.Canceled) {
			t.Errorf("Await cancelled: %v", err)
		}
	})

	t.Run("expired", func(t *testing.T) {
		svc := NewService(a.URL, "neovim", nil, nil)
		d, err := svc.StartDevice(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d.Expires = time.Now()
		if _, err := svc.Await(ctx, nil, d); !errors.Is(err, ErrExpired) {
			t.Errorf("Await of an expired code: %v, want ErrExpired", err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		svc := NewService("http://127.0.0.1:1", "neovim", nil, nil)
		if _, err := svc.StartDevice(ctx); !errors.Is(err, ErrUnavailable) {
			t.Errorf("StartDevice on a closed port: %v, want ErrUnavailable", err)
		}
	})
}

// TestErrorCodes maps every error code of docs/accounts.md to what the client does.
func TestErrorCodes(t *testing.T) {
	tests := []struct {
		code string
		want error
	}{
		{"invalid_grant", ErrInvalidGrant},
		{"access_denied", ErrDenied},
		{"expired_token", ErrExpired},
		{"temporarily_unavailable", ErrUnavailable},
		{"rate_limited", ErrUnavailable},
		{"server_error", ErrUnavailable},
		{"authorization_pending", nil},
		{"slow_down", nil},
		{"invalid_request", nil},
	}
	for _, tt := range tests {
		err := error(&Error{Code: tt.code})
		for _, s := range []error{ErrInvalidGrant, ErrDenied, ErrExpired, ErrUnavailable} {
			if got := errors.Is(err, s); got != (s == tt.want) {
				t.Errorf("%s: errors.Is(%v) = %v", tt.code, s, got)
			}
		}
	}
}

func TestFilePermissions(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "config")
	if err := os.MkdirAll(filepath.Join(dir, "codingplan"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := File{Path: filepath.Join(dir, "codingplan", "signin.json")}
	if _, err := f.Load(); !errors.Is(err, ErrSignedOut) {
		t.Fatalf("Load without a file: %v, want ErrSignedOut", err)
	}
	want := Stored{URL: "http://127.0.0.1:8788", Refresh: "r1"}
	if err := f.Save(want); err != nil {
		t.Fatal(err)
	}
	mode := func(p string) fs.FileMode {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return info.Mode().Perm()
	}
	if got := mode(f.Path); got != 0o600 {
		t.Errorf("file mode %o, want 600", got)
	}
	if got := mode(filepath.Dir(f.Path)); got != 0o700 {
		t.Errorf("directory mode %o, want 700 (it was 755)", got)
	}
	if got, err := f.Load(); err != nil || got != want {
		t.Errorf("Load: %+v, %v; want %+v", got, err, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(f.Path))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want only the file (no temporary left)", len(entries))
	}
	if err := os.Chmod(f.Path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(); err != nil || mode(f.Path) != 0o600 {
		t.Errorf("Load of a readable file: %v, mode %o; want it made 600", err, mode(f.Path))
	}
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(); err != nil {
		t.Errorf("Delete of a missing file: %v", err)
	}
	if _, err := f.Load(); !errors.Is(err, ErrSignedOut) {
		t.Errorf("Load after Delete: %v, want ErrSignedOut", err)
	}
}

// poll is one answer of the token endpoint, as pollRecorder saw it.
type poll struct {
	at   time.Time
	code string // the OAuth error, or "ok"
}

// pollRecorder passes requests to the real service and reports each answer of /v1/token.
func pollRecorder(polls chan<- poll) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil || r.URL.Path != "/v1/token" {
			return resp, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		p := poll{at: time.Now(), code: "ok"}
		var e Error
		if resp.StatusCode != http.StatusOK && json.Unmarshal(body, &e) == nil {
			p.code = e.Code
		}
		polls <- p
		return resp, nil
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// runKeeper runs k until the test ends.
func runKeeper(t *testing.T, k *Keeper) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestKeeperRefreshes: with access tokens of one minute, the keeper refreshes Early before
// expiry, stores each new refresh token before using it, refreshes at once when the backend
// refuses its token, and when the sign-in is revoked elsewhere tells once and hands on "".
func TestKeeperRefreshes(t *testing.T) {
	a := startAccounts(t, "ACCESS_TTL=1m")
	svc := NewService(a.URL, "neovim", nil, nil)
	file := File{Path: filepath.Join(t.TempDir(), "codingplan", "signin.json")}
	sink := newSink()
	k := NewKeeper(sink.config(file, 57*time.Second), nil)
	k.Configure(svc, "")
	runKeeper(t, k)

	first := a.signIn(t, svc)
	if err := k.Adopt(first); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, sink.set, "the first token"); got != first.Access {
		t.Fatal("Adopt did not hand on the sign-in's access token")
	}
	// Refreshed about 3 s later, 57 s before it expires.
	start := time.Now()
	second := recv(t, sink.set, "a refreshed token")
	if second == first.Access || second == "" {
		t.Fatal("the refresh handed on the same or no token")
	}
	if waited := time.Since(start); waited > 20*time.Second {
		t.Errorf("refreshed after %v, want about 3 s", waited)
	}
	st, err := file.Load()
	if err != nil || st.Refresh == first.Refresh || st.URL != a.URL {
		t.Fatalf("stored %v, %v: want the new refresh token for %s", st.Refresh == first.Refresh, err, a.URL)
	}

	// The backend refused the current token (expired, say): a fresh one at once.
	k.Refused(second)
	if third := recv(t, sink.set, "a token after the refusal"); third == second || third == "" {
		t.Fatal("the refusal did not bring a fresh token")
	}

	// The sign-in is revoked elsewhere (the old refresh token presented again ends it): the
	// next refusal's refresh fails, the user is told once, the file goes.
	if _, err := svc.Refresh(t.Context(), first.Refresh); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("replaying the first refresh token: %v, want invalid_grant", err)
	}
	k.mu.Lock()
	current := k.access
	k.forcedAt = time.Time{} // the 30 s bound on forced refreshes is not what is tested here
	k.mu.Unlock()
	k.Refused(current)
	if got := recv(t, sink.set, "the end of the sign-in"); got != "" {
		t.Fatal("a token was handed on after the sign-in ended")
	}
	msg := recv(t, sink.lost, "the user being told")
	if !strings.Contains(msg, "sign in again") {
		t.Errorf("told %q", msg)
	}
	k.Refused(current)
	select {
	case m := <-sink.lost:
		t.Errorf("told twice: %q", m)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := file.Load(); !errors.Is(err, ErrSignedOut) {
		t.Errorf("the ended sign-in's file: %v, want it deleted", err)
	}
}

// TestStoredSignIn: a stored sign-in is used at start; signing out revokes it at the service
// and deletes the file.
func TestStoredSignIn(t *testing.T) {
	a := startAccounts(t)
	svc := NewService(a.URL, "neovim", nil, nil)
	file := File{Path: filepath.Join(t.TempDir(), "codingplan", "signin.json")}
	tok := a.signIn(t, svc)
	if err := file.Save(Stored{URL: a.URL, Refresh: tok.Refresh}); err != nil {
		t.Fatal(err)
	}

	// A stored sign-in for another service is not used.
	sink := newSink()
	other := NewKeeper(sink.config(file, 0), nil)
	other.Configure(NewService("http://127.0.0.1:1", "neovim", nil, nil), "")
	if any, _ := other.SignedIn(); any {
		t.Error("a sign-in stored for another account service was used")
	}

	k := NewKeeper(sink.config(file, 0), nil)
	k.Configure(svc, "")
	runKeeper(t, k)
	if got := recv(t, sink.set, "a token from the stored sign-in"); got == "" || got == tok.Access {
		t.Fatal("no fresh token from the stored sign-in")
	}
	st, err := file.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := k.SignOut(t.Context()); err != nil {
		t.Fatalf("SignOut: %v", err)
	}
	if got := recv(t, sink.set, "the sign-out"); got != "" {
		t.Error("SignOut handed on a token")
	}
	if _, err := file.Load(); !errors.Is(err, ErrSignedOut) {
		t.Errorf("the file after SignOut: %v, want it deleted", err)
	}
	// Revoked at the service: the last stored refresh token no longer works.
	if _, err := svc.Refresh(t.Context(), st.Refresh); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("refresh after SignOut: %v, want invalid_grant", err)
	}
	if out := a.Admin(t, "", "signin", "list", a.Email, "--json"); strings.Count(out, `"revoked"`) < 1 {
		t.Errorf("signin list after SignOut: %s, want it revoked", out)
	}
}

// TestAPIKey: an API key is exchanged for access tokens, again when the backend refuses one;
// a revoked key is told once.
func TestAPIKey(t *testing.T) {
	a := startAccounts(t)
	key := wire.Secret(strings.TrimSpace(a.Admin(t, "", "key", "create", a.Email, "--name", "ci")))
	svc := NewService(a.URL, "codingplan-lsp", nil, nil)
	sink := newSink()
	k := NewKeeper(sink.config(File{}, 0), nil)
	k.Configure(svc, key)
	runKeeper(t, k)
	first := recv(t, sink.set, "a token for the key")
	if first == "" {
		t.Fatal("no token for the API key")
	}
	if _, device := k.SignedIn(); device {
		t.Error("an API key counts as a device sign-in")
	}

	var keys []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(a.Admin(t, "", "key", "list", a.Email, "--json")), &keys); err != nil || len(keys) != 1 {
		t.Fatalf("key list: %v %v", keys, err)
	}
	a.Admin(t, "", "key", "revoke", a.Email, keys[0].ID)
	k.Refused(first)
	if got := recv(t, sink.set, "the end of the key"); got != "" {
		t.Fatal("a token was handed on for a revoked key")
	}
	if msg := recv(t, sink.lost, "the user being told"); !strings.Contains(msg, "API key") {
		t.Errorf("told %q, want it to name the API key", msg)
	}
}
