package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	wire "github.com/codingplan/codingplan/shared"

	"github.com/codingplan/codingplan/backend/internal/valkeytest"
)

// TestServeValkeyLate: with Valkey down at start, serve still starts, says degraded in /readyz,
// /metrics and its log, and refuses streams under the default outage policy (closed) with a
// retry hint; once a Valkey comes up on that address it becomes ready, and a stream's lease is
// in Valkey while it runs and gone after.
func TestServeValkeyLate(t *testing.T) {
	if _, err := exec.LookPath("valkey-server"); err != nil && os.Getenv("CODINGPLAN_REQUIRE_VALKEY") != "1" {
		t.Skip("valkey-server is not installed")
	}
	port := valkeytest.FreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	prefix := fmt.Sprintf("test-late-%d", time.Now().UnixNano())
	gate := make(chan struct{}, 1)
	provider := gatedOpenAI(t, gate)
	s := startServe(t, fmt.Sprintf(`listen = "127.0.0.1:0"
valkey = %q
valkey_prefix = %q
drain_timeout = "5s"
# The test's Valkey is new: no leases from before it to wait for.
lease_recovery_window = "-1s"

[[models]]
name = "fake"
aliases = ["default"]
provider = "openai-chat"
base_url = %q
model = "fake-1"
`, addr, prefix, provider))

	if got := s.readyz(); got["status"] != "degraded" {
		t.Errorf("/readyz with Valkey down: %v, want degraded", got)
	}
	if _, metrics := s.get("/metrics"); !strings.Contains(metrics, "codingplan_lease_degraded 1\n") {
		t.Error("/metrics does not flag the lease pool degraded")
	}
	if logs := s.stderr.String(); !strings.Contains(logs, "valkey unreachable at start") {
		t.Errorf("no warning in the log:\n%s", logs)
	}
	st := s.request("c1")
	if f := st.read(); f.Type != wire.TypeError || f.Code != wire.CodeInternal || f.RetryAfterMS <= 0 {
		t.Fatalf("request while Valkey is down: %+v, want an internal error with retry_after_ms", f)
	}

	valkeytest.StartOn(t, port)
	s.awaitReadyz("status", "ready")
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	leases := func() int64 {
		t.Helper()
		n, err := client.Do(context.Background(), client.B().Zcard().Key(prefix+":{dev}:leases").Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The lease is released just after done is queued: watch the key's keyspace events to see
	// it go, rather than reading it once.
	if err := client.Do(context.Background(), client.B().ConfigSet().ParameterValue().
		ParameterValue("notify-keyspace-events", "Kgz").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 1)
	subscribed := make(chan struct{})
	conn, release := client.Dedicate()
	wait := conn.SetPubSubHooks(valkey.PubSubHooks{
		OnMessage: func(valkey.PubSubMessage) {
			select {
			case changed <- struct{}{}:
			default:
			}
		},
		OnSubscription: func(s valkey.PubSubSubscription) {
			if s.Kind == "subscribe" {
				close(subscribed)
			}
		},
	})
	defer func() { release(); <-wait }()
	if err := conn.Do(context.Background(), conn.B().Subscribe().Channel("__keyspace@0__:"+prefix+":{dev}:leases").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	<-subscribed

	st = s.request("c2")
	st.expect(wire.TypeDelta, "hello ")
	if n := leases(); n != 1 {
		t.Errorf("leases in Valkey during the stream: %d, want 1", n)
	}
	gate <- struct{}{}
	st.expect(wire.TypeDelta, "world")
	st.expect(wire.TypeDone, "")
	deadline := time.After(10 * time.Second)
	for n := leases(); n != 0; n = leases() {
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("leases in Valkey after the stream: %d, want 0", n)
		}
	}
	if got := s.readyz(); got["status"] != "ready" {
		t.Errorf("/readyz at the end: %v", got)
	}
	s.stop()
	if logs := s.stderr.String(); !strings.Contains(logs, `"msg":"valkey connected"`) {
		t.Errorf("the log does not say Valkey connected:\n%s", logs)
	}
}
