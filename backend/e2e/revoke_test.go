package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/revoke"
	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

// revokedText is the fixed message of the error frame before a revoked socket closes.
const revokedText = "the sign-in was revoked or the account suspended; sign in again"

// revokeDeadline is the promise: every socket of a revoked account closed within it.
const revokeDeadline = 5 * time.Second

// mintTokenSID is mintToken with a sid claim.
func mintTokenSID(t *testing.T, cfgPath, stateDir, user, plan, sid string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "codingplan-backend"), "token", "--sub", user, "--plan", plan,
		"--sid", sid, "--config", cfgPath, "--state-dir", stateDir).Output()
	if err != nil {
		t.Fatalf("codingplan-backend token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// sock is one websocket of the test, past its hello.
type sock struct {
	t     *testing.T
	c     *websocket.Conn
	hello wire.ServerFrame
}

// dialWS connects to n with token and reads the hello; a refused upgrade fails the test.
func dialWS(t *testing.T, n *node, token string) *sock {
	t.Helper()
	c, status, err := tryDial(n, token)
	if err != nil {
		t.Fatalf("dial %s: %v (status %d)", n.name, err, status)
	}
	t.Cleanup(func() { c.Close() })
	s := &sock{t: t, c: c}
	s.hello = s.next()
	if s.hello.Type != wire.TypeHello {
		t.Fatalf("first frame %+v, want hello", s.hello)
	}
	return s
}

// tryDial attempts an upgrade and returns the HTTP status of a refusal.
func tryDial(n *node, token string) (*websocket.Conn, int, error) {
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(n.wsURL(), http.Header{"Authorization": {"Bearer " + token}})
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	return c, status, err
}

// next reads one frame within revokeDeadline.
func (s *sock) next() wire.ServerFrame {
	s.t.Helper()
	f, err := s.read(time.Now().Add(revokeDeadline))
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	return f
}

func (s *sock) read(deadline time.Time) (wire.ServerFrame, error) {
	_ = s.c.SetReadDeadline(deadline)
	_, data, err := s.c.ReadMessage()
	if err != nil {
		return wire.ServerFrame{}, err
	}
	return wire.DecodeServer(data)
}

// ping checks the socket is open: a ping frame gets its pong.
func (s *sock) ping(id string) {
	s.t.Helper()
	b, _ := wire.Marshal(wire.ClientFrame{Type: wire.TypePing, ID: id})
	if err := s.c.WriteMessage(websocket.TextMessage, b); err != nil {
		s.t.Fatalf("write ping: %v", err)
	}
	for {
		f := s.next()
		if f.Type == wire.TypePong && f.ID == id {
			return
		}
		if f.Type == wire.TypeError && f.ID == "" {
			s.t.Fatalf("socket got %s (%s), want it open", f.Code, f.Message)
		}
	}
}

// ending is how a socket ended after a revocation: when its connection error frame and its
// close arrived, and the error's code and message.
type ending struct {
	errAt, closedAt time.Time
	code            wire.Code
	message         string
	closeCode       int
	err             error
}

// awaitEnd reads until the socket closes, on its own goroutine, and reports how it ended.
func (s *sock) awaitEnd() <-chan ending {
	ch := make(chan ending, 1)
	go func() { // owned by the test, which receives from ch
		var e ending
		deadline := time.Now().Add(2 * revokeDeadline)
		for {
			f, err := s.read(deadline)
			if err != nil {
				e.closedAt = time.Now()
				if ce, ok := err.(*websocket.CloseError); ok {
					e.closeCode = ce.Code
				} else {
					e.err = err
				}
				ch <- e
				return
			}
			if f.Type == wire.TypeError && f.ID == "" {
				e.errAt, e.code, e.message = time.Now(), f.Code, f.Message
			}
		}
	}()
	return ch
}

// percentile returns the p-th percentile (0 to 100) of sorted d, nearest rank.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d))*p/100+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func TestRevocationAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3 backend nodes")
	}
	const (
		rounds  = 20
		perNode = 2 // sockets of the revoked account on each node, per round
		prefix  = "revoke-e2e"
	)
	vk := valkeytest.Start(t)

	// A provider whose streams run until cancelled, reporting their end.
	provider := providertest.New()
	t.Cleanup(provider.Close)
	streamEnded := make(chan struct{}, 16)
	provider.Script(func(*providertest.Request) providertest.Reply {
		chunks := make([]string, 1000)
		for i := range chunks {
			chunks[i] = "tok "
		}
		return providertest.Reply{Chunks: chunks, Pace: func(ctx context.Context, i int) error {
			tm := time.NewTimer(20 * time.Millisecond)
			defer tm.Stop()
			select {
			case <-ctx.Done():
				streamEnded <- struct{}{}
				return ctx.Err()
			case <-tm.C:
				return nil
			}
		}}
	})

	dir, stateDir, logDir := dirs(t)
	cfgPath := writeConfig(t, dir, fakeModelConfig(vk.Addr(), prefix, provider.URL))

	// Every token is minted before any revocation: iat has a resolution of one second, and a
	// token issued in the second of a revocation counts as issued before it.
	victims := make([]string, rounds)
	for r := range victims {
		victims[r] = mintTokenSID(t, cfgPath, stateDir, fmt.Sprintf("acct-%d", r), "pro", "signin-1")
	}
	otherTok := mintToken(t, cfgPath, stateDir, "bystander", "pro")
	sidKept := mintTokenSID(t, cfgPath, stateDir, "acct-sid", "pro", "kept")
	sidGone := mintTokenSID(t, cfgPath, stateDir, "acct-sid", "pro", "gone")
	lateTok := mintToken(t, cfgPath, stateDir, "acct-late", "pro")
	planTok := mintToken(t, cfgPath, stateDir, "acct-plan", "lite")

	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = newNode(t, fmt.Sprintf("node%d", i), logDir, "--config", cfgPath, "--state-dir", stateDir)
	}
	subscribed := func(n *node) bool {
		n.mu.Lock()
		starts := n.starts
		n.mu.Unlock()
		return n.logsContain(`"msg":"revocations subscribed"`) >= starts
	}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, n.name+" to subscribe", func() bool { return subscribed(n) })
	}

	vc, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{vk.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	ctx := context.Background()
	// publish publishes e now, checking it reached want subscribers.
	publishTo := func(want int, e revoke.Event) time.Time {
		t.Helper()
		at := time.Now()
		e.At = at.UnixMilli()
		n, err := revoke.Publish(ctx, vc, prefix, e, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n != int64(want) {
			t.Fatalf("published to %d subscribers, want %d", n, want)
		}
		return at
	}
	publish := func(e revoke.Event) time.Time { t.Helper(); return publishTo(len(nodes), e) }

	bystanders := make([]*sock, len(nodes))
	for i, n := range nodes {
		bystanders[i] = dialWS(t, n, otherTok)
	}

	// Rounds: an account's sockets on every node, one of them streaming (in round 0), revoked.
	var perSocket, perRound []time.Duration
	for r := range rounds {
		var socks []*sock
		for _, n := range nodes {
			for range perNode {
				socks = append(socks, dialWS(t, n, victims[r]))
			}
		}
		if r == 0 {
			b, _ := wire.Marshal(wire.ClientFrame{Type: wire.TypeRequest, ID: "s1", Op: wire.OpCompletion,
				Completion: &wire.Completion{Prefix: "func main() {", Language: "go"}})
			if err := socks[0].c.WriteMessage(websocket.TextMessage, b); err != nil {
				t.Fatal(err)
			}
			if f := socks[0].next(); f.Type != wire.TypeDelta {
				t.Fatalf("round 0: got %+v, want a delta", f)
			}
		}
		ends := make([]<-chan ending, len(socks))
		for i, s := range socks {
			ends[i] = s.awaitEnd()
		}
		at := publish(revoke.Event{Sub: fmt.Sprintf("acct-%d", r), Kind: revoke.KindRevoke})
		var last time.Duration
		for i, ch := range ends {
			e := <-ch
			if e.err != nil || e.code != wire.CodeUnauthorized || e.message != revokedText || e.closeCode != websocket.ClosePolicyViolation {
				t.Fatalf("round %d socket %d: error %q (%s), close %d, err %v; want unauthorized then close 1008",
					r, i, e.code, e.message, e.closeCode, e.err)
			}
			d := e.closedAt.Sub(at)
			if d > revokeDeadline {
				t.Errorf("round %d socket %d closed %v after the publish, over %v", r, i, d, revokeDeadline)
			}
			perSocket = append(perSocket, d)
			last = max(last, d)
		}
		perRound = append(perRound, last)
		if r == 0 {
			select {
			case <-streamEnded:
			case <-time.After(revokeDeadline):
				t.Fatal("the revoked socket's provider call was not cancelled")
			}
		}
	}
	slices.Sort(perSocket)
	slices.Sort(perRound)
	t.Logf("revocation to socket closed, %d sockets (%d rounds x %d sockets on 3 nodes): p50 %v p99 %v max %v",
		len(perSocket), rounds, perNode*len(nodes), percentile(perSocket, 50), percentile(perSocket, 99), perSocket[len(perSocket)-1])
	t.Logf("revocation to the account's last socket closed, %d rounds: p50 %v p99 %v max %v",
		len(perRound), percentile(perRound, 50), percentile(perRound, 99), perRound[len(perRound)-1])
	for i, s := range bystanders {
		s.ping(fmt.Sprintf("b%d", i))
	}

	// One sign-in revoked: its sockets close, the account's other sign-in stays.
	kept, gone := dialWS(t, nodes[0], sidKept), dialWS(t, nodes[1], sidGone)
	goneEnd := gone.awaitEnd()
	publish(revoke.Event{Sub: "acct-sid", SID: "gone", Kind: revoke.KindRevoke})
	if e := <-goneEnd; e.code != wire.CodeUnauthorized || e.closeCode != websocket.ClosePolicyViolation {
		t.Fatalf("sid revoked: error %q, close %d, err %v", e.code, e.closeCode, e.err)
	}
	kept.ping("k1")
	if _, status, err := tryDial(nodes[2], sidGone); err == nil || status != http.StatusUnauthorized {
		t.Fatalf("revoked sid at upgrade: status %d, err %v; want 401", status, err)
	}
	dialWS(t, nodes[2], sidKept).ping("k2")

	// A node down while the revocation is published refuses the token once it is back.
	nodes[2].kill()
	publishTo(len(nodes)-1, revoke.Event{Sub: "acct-late", Kind: revoke.KindRevoke})
	nodes[2].start()
	if _, status, err := tryDial(nodes[2], lateTok); err == nil || status != http.StatusUnauthorized {
		t.Fatalf("restarted node: status %d, err %v; want 401 for the revoked token", status, err)
	}
	waitFor(t, 10*time.Second, "node2 to subscribe again", func() bool { return subscribed(nodes[2]) })
	bystanders[2] = dialWS(t, nodes[2], otherTok)

	// A plan change reaches the open sockets, and new connections with the old token.
	var planSocks []*sock
	for _, n := range nodes {
		s := dialWS(t, n, planTok)
		if s.hello.Plan.Name != "lite" {
			t.Fatalf("hello plan %+v, want lite", s.hello.Plan)
		}
		planSocks = append(planSocks, s)
	}
	at := publish(revoke.Event{Sub: "acct-plan", Kind: revoke.KindPlan, Plan: "max"})
	for i, s := range planSocks {
		f := s.next()
		if f.Type != wire.TypeHello || f.Plan == nil || f.Plan.Name != "max" || f.Plan.Concurrency != 10 {
			t.Fatalf("plan socket %d: got %+v, want a hello with plan max/10", i, f)
		}
		t.Logf("plan change reached socket %d (%s) %v after the publish", i, nodes[i].name, time.Since(at).Round(time.Millisecond))
		s.ping(fmt.Sprintf("pl%d", i))
	}
	if s := dialWS(t, nodes[1], planTok); s.hello.Plan.Name != "max" {
		t.Errorf("new connection with the lite token: plan %+v, want max", s.hello.Plan)
	}

	for i, s := range bystanders {
		s.ping(fmt.Sprintf("b2-%d", i))
	}
}
