package gateway

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/auth"
	"github.com/codingplan/codingplan/backend/internal/conns"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
	"github.com/codingplan/codingplan/shared/clock/clocktest"
)

// connObserver tells when a connection ends and which limit refused an upgrade.
type connObserver struct {
	fakeObserver
	closed  chan struct{}
	refused chan string
}

func newConnObserver() *connObserver {
	return &connObserver{closed: make(chan struct{}, 64), refused: make(chan string, 64)}
}

func (o *connObserver) Connection(delta int) {
	if delta < 0 {
		o.closed <- struct{}{}
	}
}

func (o *connObserver) Refused(reason string) { o.refused <- reason }

// user returns a token of h for the subject sub.
func (h *harness) user(sub string) string {
	return h.token(func(c *auth.Claims) { c.Subject = sub })
}

// refusal dials with token (none when empty) and checks the upgrade gets 429 rate_limited with
// Retry-After retry and a message containing msg; it returns the reason the observer got.
func (h *harness) refusal(t *testing.T, obs *connObserver, token, retry, msg string) string {
	t.Helper()
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	c, resp, err := websocket.DefaultDialer.Dial(h.url, hdr)
	if err == nil {
		c.Close()
		t.Fatal("upgraded, want 429")
	}
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("got %v (%s), want 429", err, body(resp))
	}
	if got := resp.Header.Get("Retry-After"); got != retry {
		t.Errorf("Retry-After = %q, want %q", got, retry)
	}
	var b rejectBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	if b.Code != wire.CodeRateLimited || !strings.Contains(b.Message, msg) {
		t.Errorf("body %+v, want rate_limited with %q", b, msg)
	}
	return recv(t, obs.refused, "the refusal's count")
}

// TestConnsPerNode: a user's connections on one node are capped, other users are not affected,
// and a closed connection frees its slot.
func TestConnsPerNode(t *testing.T) {
	obs := newConnObserver()
	h := newHarness(t, setup{cfg: Config{MaxConnsPerNode: 2}, deps: Deps{Observer: obs}})
	first := h.dial(h.user("ada"))
	h.dial(h.user("ada"))
	if got := h.refusal(t, obs, h.user("ada"), "30", "this account has 2 connections open to this server (the limit per server); close editors"); got != RefusedUserNode {
		t.Errorf("reason %q, want %q", got, RefusedUserNode)
	}
	h.dial(h.user("bob")).roundTrip("p")
	first.c.Close()
	recv(t, obs.closed, "the closed connection's end")
	h.dial(h.user("ada")).roundTrip("p")
}

// TestUpgradeRate: upgrades from one address past the burst get 429 with the bucket's wait,
// before the token is even looked at, until the bucket refills.
func TestUpgradeRate(t *testing.T) {
	obs := newConnObserver()
	ck := clocktest.New(t0)
	h := newHarness(t, setup{cfg: Config{UpgradesPerMinute: 60, UpgradeBurst: 2}, deps: Deps{Observer: obs, Clock: ck}})
	h.dial(h.user("ada"))
	h.dial(h.user("bob"))
	if got := h.refusal(t, obs, "", "1", "too many connection attempts from this address"); got != RefusedAddress {
		t.Errorf("reason %q, want %q", got, RefusedAddress)
	}
	ck.Add(time.Second)
	h.dial(h.user("ada")).roundTrip("p")
}

func TestAddrKey(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.7:5000", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:5000", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::/64"},
		{"@unix", "@unix"},
	} {
		if got := addrKey(tc.remote); got != tc.want {
			t.Errorf("addrKey(%q) = %q, want %q", tc.remote, got, tc.want)
		}
	}
}

// connCounter returns a conns.Counter named node on client under prefix, closed at cleanup.
func connCounter(t *testing.T, client valkey.Client, prefix, node string) *conns.Counter {
	t.Helper()
	c := conns.New(client, conns.Config{Prefix: prefix, NodeID: node, OpTimeout: 500 * time.Millisecond}, slog.New(slog.DiscardHandler))
	t.Cleanup(c.Close)
	return c
}

// TestConnsAcrossNodes: two gateways sharing one Valkey hold a user to one limit together, and
// a connection closed on one node frees a slot on the other.
func TestConnsAcrossNodes(t *testing.T) {
	client := valkeytest.Dial(t, valkeytest.EnvSingle)
	prefix := valkeytest.Prefix("test-gateway-conns")
	obsA, obsB := newConnObserver(), newConnObserver()
	a := newHarness(t, setup{cfg: Config{MaxConns: 3}, deps: Deps{Observer: obsA, Conns: connCounter(t, client, prefix, "a")}})
	b := newHarness(t, setup{cfg: Config{MaxConns: 3}, deps: Deps{Observer: obsB, Conns: connCounter(t, client, prefix, "b")}})
	onA := a.dial(a.user("ada"))
	a.dial(a.user("ada"))
	b.dial(b.user("ada"))
	if got := b.refusal(t, obsB, b.user("ada"), "30", "this account has 3 connections open (the limit); close editors you no longer use"); got != RefusedUser {
		t.Errorf("reason %q, want %q", got, RefusedUser)
	}
	a.refusal(t, obsA, a.user("ada"), "30", "3 connections open (the limit)")
	b.dial(b.user("bob")).roundTrip("p")
	onA.c.Close()
	recv(t, obsA.closed, "the closed connection's end")
	b.dial(b.user("ada")).roundTrip("p")
}

// TestConnsValkeyDown: with Valkey gone, the cross-node limit is not enforced but the per-node
// one is, and the upgrades are not refused for the outage.
func TestConnsValkeyDown(t *testing.T) {
	srv := valkeytest.Start(t)
	client := valkeytest.DialAddr(t, srv.Addr())
	obs := newConnObserver()
	h := newHarness(t, setup{cfg: Config{MaxConns: 2, MaxConnsPerNode: 3}, deps: Deps{Observer: obs, Conns: connCounter(t, client, valkeytest.Prefix("test-gateway-conns"), "n")}})
	h.dial(h.user("ada"))
	srv.Stop(syscall.SIGKILL)
	h.dial(h.user("ada"))
	h.dial(h.user("ada")).roundTrip("p") // over max_conns: unchecked
	if got := h.refusal(t, obs, h.user("ada"), "30", "3 connections open to this server"); got != RefusedUserNode {
		t.Errorf("reason %q, want %q", got, RefusedUserNode)
	}
}
