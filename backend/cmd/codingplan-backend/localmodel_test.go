package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// echoProvider streams "ok".
type echoProvider struct{}

func (echoProvider) Stream(_ context.Context, _ *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
	return upstream.Result{FinishReason: wire.FinishStop}, sink(0, []byte("ok"))
}

// TestLocalModelsInBackground: the local factory returns at once; until the model is open its
// provider answers "still training" as upstream_unavailable, then it streams; /readyz's state
// follows, and a failed load says failed.
func TestLocalModelsInBackground(t *testing.T) {
	for _, tt := range []struct {
		name      string
		openErr   error
		wantState string
	}{{"ready", nil, localReady}, {"failed", errors.New("disk full"), localFailed}} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			stdout := newSyncBuffer()
			l := &localModels{
				open: func(upstream.ModelConfig, upstream.Env) (upstream.Provider, error) {
					<-release
					if tt.openErr != nil {
						return nil, tt.openErr
					}
					return echoProvider{}, nil
				},
				state: t.TempDir(), log: slog.New(slog.DiscardHandler), stdout: stdout,
			}
			defer l.wait()
			if got := l.status(); got != "" {
				t.Errorf("status with no local model: %q, want none", got)
			}
			p, err := l.factory()(upstream.ModelConfig{Name: "local", Provider: upstream.KindLocal}, upstream.Env{})
			if err != nil {
				t.Fatal(err)
			}
			if got := l.status(); got != localLoading {
				t.Errorf("status while loading: %q", got)
			}
			var text strings.Builder
			sink := func(_ int, b []byte) error { text.Write(b); return nil }
			_, err = p.Stream(context.Background(), &upstream.Request{}, sink)
			var we *wire.Error
			if !errors.Is(err, upstream.ErrUnavailable) || !errors.As(err, &we) || !strings.Contains(we.Message, "still training") {
				t.Fatalf("stream while loading: %v, want ErrUnavailable with a wire error that says still training", err)
			}
			close(release)
			recv(t, p.(*lateProvider).ready, "the model to load")
			l.wait()
			if got := l.status(); got != tt.wantState {
				t.Errorf("status after loading: %q, want %q", got, tt.wantState)
			}
			_, err = p.Stream(context.Background(), &upstream.Request{}, sink)
			if tt.openErr != nil {
				if !errors.Is(err, upstream.ErrUnavailable) {
					t.Errorf("stream after a failed load: %v, want ErrUnavailable", err)
				}
				return
			}
			if err != nil || text.String() != "ok" {
				t.Errorf("stream after loading: %q, %v", text.String(), err)
			}
			stdout.await(t, regexp.MustCompile(`local model "local" ready \(\d+\.\ds\)`))
		})
	}
}

// TestLocalModelsCheckConfig: a local model whose options are wrong fails at once, not later.
func TestLocalModelsCheckConfig(t *testing.T) {
	l := &localModels{open: func(upstream.ModelConfig, upstream.Env) (upstream.Provider, error) {
		t.Error("opened a model whose configuration is wrong")
		return echoProvider{}, nil
	}, state: t.TempDir(), log: slog.New(slog.DiscardHandler), stdout: newSyncBuffer()}
	defer l.wait()
	m := upstream.ModelConfig{Name: "local", Provider: upstream.KindLocal, Options: map[string]string{upstream.LocalOrder: "many"}}
	if _, err := l.factory()(m, upstream.Env{}); err == nil {
		t.Error("no error for a bad option")
	}
	if got := l.status(); got != "" {
		t.Errorf("status: %q, want none", got)
	}
}

// TestServeLocalModel: serve with a local model trained on a tiny corpus listens, reports the
// model in /readyz until it is ready, then completes with it.
func TestServeLocalModel(t *testing.T) {
	corpus := t.TempDir()
	for i := range 20 {
		src := fmt.Sprintf("package p\n\nfunc add%d(a, b int) int {\n\treturn a + b\n}\n\nfunc sub%d(a, b int) int {\n\treturn a - b\n}\n", i, i)
		if err := os.WriteFile(filepath.Join(corpus, fmt.Sprintf("f%d.go", i)), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startServe(t, fmt.Sprintf(`listen = "127.0.0.1:0"
drain_timeout = "5s"

[[models]]
name = "local"
aliases = ["default"]
provider = "local"
[models.options]
corpus_dirs = %q
no_goroot = "true"
`, corpus))
	if got := s.readyz(); got["local_model"] != localLoading && got["local_model"] != localReady {
		t.Errorf("/readyz: %v, want local_model loading or ready", got)
	}
	s.awaitReadyz("local_model", localReady)
	st := s.request("c1")
	for {
		f := st.read()
		if f.Type == wire.TypeDone {
			break
		}
		if f.Type != wire.TypeDelta {
			t.Fatalf("got %+v, want deltas and done", f)
		}
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
