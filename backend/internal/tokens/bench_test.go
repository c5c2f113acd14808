package tokens

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkRefreshGrant measures refresh-token grants through the token endpoint's handler (form
// parsing, rotation in the store, the account read, signing, the JSON answer): one client
// refreshing after another in one sign-in, and 8 clients at once, each with its own sign-in. It
// reports grants/s and the p50 and p99 of one grant.
//
//	CODINGPLAN_TEST_POSTGRES=postgres://postgres@127.0.0.1:5494/postgres?sslmode=disable \
//	    go test -run '^$' -bench RefreshGrant -benchtime 3s ./backend/internal/tokens/
func BenchmarkRefreshGrant(b *testing.B) {
	for _, impl := range []struct {
		name string
		open func(testing.TB) testStore
	}{
		{"sqlite", func(t testing.TB) testStore { return openSQLite(t) }},
		{"postgres", func(t testing.TB) testStore { return openPostgres(t) }},
	} {
		for _, clients := range []int{1, 8} {
			name := impl.name + "/serial"
			if clients > 1 {
				name = impl.name + "/8-clients"
			}
			b.Run(name, func(b *testing.B) { benchRefresh(b, impl.open(b), clients) })
		}
	}
}

func benchRefresh(b *testing.B, st testStore, clients int) {
	iss := newIssuer(b, st, nil)
	h := iss.Handler()
	acct := newAccount(b, st, "bench@example.com", "pro")
	tokens := make([]string, clients)
	for j := range tokens {
		resp, err := iss.newSignIn(b.Context(), acct, "bench")
		if err != nil {
			b.Fatal(err)
		}
		tokens[j] = resp.RefreshToken
	}
	// Each client takes grants from a shared budget of b.N.
	work := make(chan struct{}, clients)
	took := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	b.ResetTimer()
	for j := range clients {
		wg.Go(func() {
			tok := tokens[j]
			for range work {
				t0 := time.Now()
				tok = refreshOnce(b, h, tok)
				took[j] = append(took[j], time.Since(t0))
			}
		})
	}
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(took...)
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "grants/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}

func refreshOnce(b *testing.B, h http.Handler, tok string) string {
	req := httptest.NewRequest(http.MethodPost, "/v1/token", strings.NewReader(refreshForm(tok).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var resp tokenResponse
	if rec.Code != http.StatusOK {
		b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.RefreshToken == "" {
		b.Fatalf("refresh answer: %v %s", err, rec.Body)
	}
	return resp.RefreshToken
}
