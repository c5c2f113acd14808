package tokens

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/store"
)

func TestTokenEndpointErrors(t *testing.T) {
	st := openSQLite(t)
	iss := newIssuer(t, st, newClock())
	h := iss.Handler()
	const form = "application/x-www-form-urlencoded"
	req := func(method, target, ctype, body string, hdr ...string) *http.Request {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		for j := 0; j+1 < len(hdr); j += 2 {
			r.Header.Set(hdr[j], hdr[j+1])
		}
		return r
	}
	refresh := "grant_type=refresh_token&refresh_token=" + random(32)
	tests := []struct {
		name   string
		req    *http.Request
		status int
		code   string
	}{
		{"json body", req("POST", "/v1/token", "application/json", `{"grant_type":"refresh_token"}`), 400, "invalid_request"},
		{"no content type", req("POST", "/v1/token", "", refresh), 400, "invalid_request"},
		{"no grant type", req("POST", "/v1/token", form, "refresh_token=x"), 400, "invalid_request"},
		{"unknown grant type", req("POST", "/v1/token", form, "grant_type=password&username=a&password=b"), 400, "unsupported_grant_type"},
		{"client credentials", req("POST", "/v1/token", form, "grant_type=client_credentials"), 400, "unsupported_grant_type"},
		{"repeated parameter", req("POST", "/v1/token", form, refresh+"&grant_type=refresh_token"), 400, "invalid_request"},
		{"parameters in the URL", req("POST", "/v1/token?"+refresh, form, refresh), 400, "invalid_request"},
		{"bad form", req("POST", "/v1/token", form, "grant_type=%zz"), 400, "invalid_request"},
		{"not utf-8", req("POST", "/v1/token", form, "grant_type=refresh_token&refresh_token=%ff"), 400, "invalid_request"},
		{"body over 16 KiB", req("POST", "/v1/token", form, refresh+"&pad="+strings.Repeat("a", MaxBodyBytes)), 400, "invalid_request"},
		{"missing refresh token", req("POST", "/v1/token", form, "grant_type=refresh_token"), 400, "invalid_request"},
		{"short refresh token", req("POST", "/v1/token", form, "grant_type=refresh_token&refresh_token=abc"), 400, "invalid_grant"},
		{"unknown refresh token", req("POST", "/v1/token", form, refresh), 400, "invalid_grant"},
		{"injection in refresh token", req("POST", "/v1/token", form, "grant_type=refresh_token&refresh_token="+url.QueryEscape(("' OR 1=1; --" + strings.Repeat(" ", 43))[:43])), 400, "invalid_grant"},
		{"missing device code", req("POST", "/v1/token", form, "grant_type="+url.QueryEscape(GrantDeviceCode)+"&client_id=vscode"), 400, "invalid_request"},
		{"device code without client", req("POST", "/v1/token", form, "grant_type="+url.QueryEscape(GrantDeviceCode)+"&device_code="+random(32)), 400, "invalid_request"},
		{"bad client id", req("POST", "/v1/token", form, refresh+"&client_id=a%20b"), 401, "invalid_client"},
		{"long client id", req("POST", "/v1/token", form, refresh+"&client_id="+strings.Repeat("a", 65)), 401, "invalid_client"},
		{"client authentication", req("POST", "/v1/token", form, refresh, "Authorization", "Basic dnNjb2RlOg=="), 401, "invalid_client"},
		{"missing api key", req("POST", "/v1/token", form, "grant_type="+url.QueryEscape(GrantAPIKey)), 400, "invalid_request"},
		{"device: no client id", req("POST", "/v1/device/code", form, "scope=x"), 400, "invalid_request"},
		{"device: bad client id", req("POST", "/v1/device/code", form, "client_id=%01"), 401, "invalid_client"},
		{"device: json", req("POST", "/v1/device/code", "application/json", `{"client_id":"vscode"}`), 400, "invalid_request"},
	}
	for _, tt := range tests {
		wantError(t, tt.name, do(t, h, tt.req), tt.status, tt.code)
	}
	if a := do(t, h, req("GET", "/v1/token", "", "")); a.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/token: %d, want 405", a.status)
	}
	a := do(t, h, req("GET", "/.well-known/jwks.json", "", ""))
	if a.status != 200 || a.header.Get("Content-Type") != "application/jwk-set+json" {
		t.Errorf("jwks: %d %q", a.status, a.header.Get("Content-Type"))
	}
}

// downStore is a store whose database is gone: every call the endpoints make fails as the real
// stores fail then.
type downStore struct{ Store }

var errDown = fmt.Errorf("store: %w: dial tcp: connection refused", store.ErrUnavailable)

func (downStore) RotateRefresh(context.Context, []byte, []byte, time.Time) (store.Family, error) {
	return store.Family{}, errDown
}
func (downStore) DeviceByHash(context.Context, []byte) (store.DeviceCode, error) {
	return store.DeviceCode{}, errDown
}
func (downStore) APIKeyByHash(context.Context, []byte) (store.APIKey, error) {
	return store.APIKey{}, errDown
}
func (downStore) CreateDeviceCode(context.Context, store.DeviceCode) error { return errDown }
func (downStore) SigningKeys(context.Context) ([]store.SigningKey, error)  { return nil, errDown }

func TestUnavailable(t *testing.T) {
	st := openSQLite(t)
	iss := newIssuer(t, st, newClock())
	iss.st = downStore{st}
	h := iss.Handler()
	checkDown(t, h)
}

func checkDown(t *testing.T, h http.Handler) {
	t.Helper()
	for name, a := range map[string]answer{
		"refresh": post(t, h, "/v1/token", refreshForm(random(32))),
		"device":  post(t, h, "/v1/token", deviceForm(random(32), "vscode")),
		"api key": post(t, h, "/v1/token", url.Values{"grant_type": {GrantAPIKey}, "api_key": {"cpk_" + random(32)}}),
		"start":   post(t, h, "/v1/device/code", url.Values{"client_id": {"vscode"}}),
	} {
		wantError(t, name, a, 503, "temporarily_unavailable")
		if a.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", name)
		}
	}
	// The keys held in memory keep being published.
	if a := do(t, h, httptest.NewRequest("GET", "/.well-known/jwks.json", nil)); a.status != 200 {
		t.Errorf("jwks while the database is down: %d", a.status)
	}
}

// TestPostgresOutage cuts the connection to a real PostgreSQL and restores it: 503s meanwhile,
// and the same sign-in works again after.
func TestPostgresOutage(t *testing.T) {
	dsn := postgresDB(t)
	u, _ := url.Parse(dsn)
	p := newProxy(t, u.Host)
	u.Host = p.addr
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	st := openPostgresDSN(t, u.String())
	iss := newIssuer(t, st, nil)
	h := iss.Handler()
	acct := newAccount(t, st, "ada@example.com", "pro")
	resp, err := iss.newSignIn(t.Context(), acct, "vscode")
	if err != nil {
		t.Fatal(err)
	}

	p.cut()
	checkDown(t, h)
	a := post(t, h, "/v1/token", refreshForm(resp.RefreshToken))
	wantError(t, "refresh while down", a, 503, "temporarily_unavailable")

	p.restore()
	var got answer
	for range 20 { // the pool drops its broken connections as it meets them
		if got = post(t, h, "/v1/token", refreshForm(resp.RefreshToken)); got.status != 503 {
			break
		}
	}
	wantTokens(t, "refresh after the outage", got, true)
}

// proxy forwards TCP connections to a server until cut.
type proxy struct {
	addr   string
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(s, c) })
		p.wg.Go(func() { pipe(c, s) })
	}
}

// cut closes every forwarded connection and refuses new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
