package upstream

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	wire "github.com/codingplan/codingplan/shared"
)

// okProvider streams "ok".
type okProvider struct{}

func (okProvider) Stream(_ context.Context, _ *Request, sink Sink) (Result, error) {
	return Result{FinishReason: wire.FinishStop}, sink(0, []byte("ok"))
}

// TestLocalModelsInBackground: the local factory returns at once; until the model is open its
// provider answers "still training" as upstream_unavailable, then it streams; /readyz's state
// follows, and a failed load says failed.
func TestLocalModelsInBackground(t *testing.T) {
	for _, tt := range []struct {
		name      string
		openErr   error
		wantState string
	}{{"ready", nil, LocalReady}, {"failed", errors.New("disk full"), LocalFailed}} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			var stdout strings.Builder // written before Wait returns
			l := NewLocalLoader(func(ModelConfig, Env) (Provider, error) {
				<-release
				if tt.openErr != nil {
					return nil, tt.openErr
				}
				return okProvider{}, nil
			}, t.TempDir(), slog.New(slog.DiscardHandler), &stdout)
			defer l.Wait()
			if got := l.Status(); got != "" {
				t.Errorf("status with no local model: %q, want none", got)
			}
			p, err := l.Factory()(ModelConfig{Name: "local", Provider: KindLocal}, Env{})
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Status(); got != LocalLoading {
				t.Errorf("status while loading: %q", got)
			}
			var text strings.Builder
			sink := func(_ int, b []byte) error { text.Write(b); return nil }
			_, err = p.Stream(context.Background(), &Request{}, sink)
			var we *wire.Error
			if !errors.Is(err, ErrUnavailable) || !errors.As(err, &we) || !strings.Contains(we.Message, "still training") {
				t.Fatalf("stream while loading: %v, want ErrUnavailable with a wire error that says still training", err)
			}
			close(release)
			select {
			case <-p.(*lateProvider).ready:
			case <-waitCtx(t).Done():
				t.Fatal("timed out waiting for the model to load")
			}
			l.Wait()
			if got := l.Status(); got != tt.wantState {
				t.Errorf("status after loading: %q, want %q", got, tt.wantState)
			}
			_, err = p.Stream(context.Background(), &Request{}, sink)
			if tt.openErr != nil {
				if !errors.Is(err, ErrUnavailable) {
					t.Errorf("stream after a failed load: %v, want ErrUnavailable", err)
				}
				return
			}
			if err != nil || text.String() != "ok" {
				t.Errorf("stream after loading: %q, %v", text.String(), err)
			}
			if re := regexp.MustCompile(`local model "local" ready \(\d+\.\ds\)`); !re.MatchString(stdout.String()) {
				t.Errorf("stdout %q does not match %s", stdout.String(), re)
			}
		})
	}
}

// TestLocalModelsCheckConfig: a local model whose options are wrong fails at once, not later.
func TestLocalModelsCheckConfig(t *testing.T) {
	l := NewLocalLoader(func(ModelConfig, Env) (Provider, error) {
		t.Error("opened a model whose configuration is wrong")
		return okProvider{}, nil
	}, t.TempDir(), slog.New(slog.DiscardHandler), nil)
	defer l.Wait()
	m := ModelConfig{Name: "local", Provider: KindLocal, Options: map[string]string{LocalOrder: "many"}}
	if _, err := l.Factory()(m, Env{}); err == nil {
		t.Error("no error for a bad option")
	}
	if got := l.Status(); got != "" {
		t.Errorf("status: %q, want none", got)
	}
}
