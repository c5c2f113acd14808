package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/conns"
	"github.com/codingplan/codingplan/backend/internal/gateway"
	"github.com/codingplan/codingplan/backend/internal/lease"
	wire "github.com/codingplan/codingplan/shared"
)

// Every observer interface is implemented.
var (
	_ gateway.Observer = (*Metrics)(nil)
	_ lease.Observer   = (*Metrics)(nil)
	_ conns.Observer   = (*Metrics)(nil)
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetrics(t *testing.T) {
	m := New()
	degraded := errors.New("degraded")
	var ready error
	m.WatchReady(func() error { return ready })
	m.Connection(1)
	m.StreamStarted()
	m.StreamStarted()
	m.StreamEnded(gateway.StreamStats{Outcome: "ok", FirstToken: 30 * time.Millisecond, Duration: time.Second, Usage: wire.Usage{PromptTokens: 40, CompletionTokens: 2}})
	m.StreamEnded(gateway.StreamStats{Outcome: "upstream_error", Duration: time.Second})
	m.StreamEnded(gateway.StreamStats{Outcome: "user-secret-label", Duration: time.Second})
	m.Acquired(0)
	m.Rejected()
	m.ValkeyError()
	m.Lost()
	m.Refused(gateway.RefusedUser)
	m.Refused(gateway.RefusedAddress)
	m.Refused(gateway.RefusedAddress)
	m.Unchecked()
	ready = degraded

	out := scrape(t, m)
	for _, want := range []string{
		`codingplan_requests_total{outcome="ok"} 1`,
		`codingplan_requests_total{outcome="upstream_error"} 1`,
		`codingplan_requests_total{outcome="internal"} 1`,
		`codingplan_requests_total{outcome="rate_limited"} 0`,
		`codingplan_tokens_total{kind="prompt"} 40`,
		`codingplan_tokens_total{kind="completion"} 2`,
		`codingplan_time_to_first_token_seconds_count 1`,
		`codingplan_stream_duration_seconds_count 3`,
		`codingplan_active_streams -1`,
		`codingplan_connections 1`,
		`codingplan_lease_wait_seconds_count 1`,
		`codingplan_lease_rejections_total 1`,
		`codingplan_valkey_errors_total 1`,
		`codingplan_upstream_errors_total{code="upstream_error"} 1`,
		`codingplan_lease_degraded 1`,
		`codingplan_leases_lost_total 1`,
		`codingplan_upgrade_refusals_total{reason="address"} 2`,
		`codingplan_upgrade_refusals_total{reason="user"} 1`,
		`codingplan_upgrade_refusals_total{reason="user_node"} 0`,
		`codingplan_conn_limit_unchecked_total 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(out, "user-secret-label") {
		t.Error("an unknown outcome became a label value")
	}
}
