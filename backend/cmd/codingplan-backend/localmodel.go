package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// States of the local models, as /readyz shows them.
const (
	localLoading = "loading"
	localReady   = "ready"
	localFailed  = "failed"
)

// errTraining is what a local model answers until it is ready. It wraps upstream.ErrUnavailable
// (so the router may fall back to another model) and carries the wire error the client gets.
var errTraining = fmt.Errorf("%w: %w", upstream.ErrUnavailable, &wire.Error{
	Code:         wire.CodeUpstreamUnavailable,
	Message:      "the local model is still training (first start only); retry in a minute",
	RetryAfterMS: 5000,
})

// localModels opens the local models in the background, so that serve listens at once even
// when the first start trains the n-gram model for a minute. Until a model is ready its
// provider answers errTraining.
type localModels struct {
	open   upstream.Factory // upstream.LocalFactory
	state  string           // the state dir, to check the configuration up front
	log    *slog.Logger
	stdout io.Writer // progress for the person running serve
	wg     sync.WaitGroup

	mu      sync.Mutex
	started int
	loading int
	failed  int
}

// factory returns the Factory for provider kind "local". It checks the model's configuration
// at once and opens the model on a goroutine of its own that wait waits for.
func (l *localModels) factory() upstream.Factory {
	return func(m upstream.ModelConfig, env upstream.Env) (upstream.Provider, error) {
		if _, err := upstream.LocalConfig(m, l.state); err != nil {
			return nil, err
		}
		p := &lateProvider{ready: make(chan struct{})}
		l.mu.Lock()
		l.started++
		l.loading++
		l.mu.Unlock()
		l.log.Info("local model loading in the background (the first start trains it, about a minute)", "model", m.Name)
		l.wg.Go(func() {
			start := time.Now()
			p.p, p.err = l.open(m, env)
			took := time.Since(start)
			close(p.ready)
			l.mu.Lock()
			l.loading--
			if p.err != nil {
				l.failed++
			}
			l.mu.Unlock()
			switch {
			case errors.Is(p.err, context.Canceled):
				l.log.Info("local model loading stopped", "model", m.Name, "ms", took.Milliseconds())
				return
			case p.err != nil:
				l.log.Error("local model failed to load", "model", m.Name, "err", p.err, "ms", took.Milliseconds())
				return
			}
			l.log.Info("local model ready", "model", m.Name, "ms", took.Milliseconds())
			fmt.Fprintf(l.stdout, "codingplan-backend: local model %q ready (%.1fs)\n", m.Name, took.Seconds())
		})
		return p, nil
	}
}

// status is "" with no local model, else loading (any still loading), failed or ready.
func (l *localModels) status() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.started == 0:
		return ""
	case l.loading > 0:
		return localLoading
	case l.failed > 0:
		return localFailed
	}
	return localReady
}

// wait waits for every model's loading to end (the context given to upstream.LocalFactory
// cuts it short).
func (l *localModels) wait() { l.wg.Wait() }

// lateProvider is a local model's Provider while it may still be loading.
type lateProvider struct {
	ready chan struct{} // closed when p or err is set
	p     upstream.Provider
	err   error
}

func (lp *lateProvider) Stream(ctx context.Context, req *upstream.Request, sink upstream.Sink) (upstream.Result, error) {
	select {
	case <-lp.ready:
	default:
		return upstream.Result{}, errTraining
	}
	if lp.err != nil {
		return upstream.Result{}, fmt.Errorf("%w: the local model failed to load: %v", upstream.ErrUnavailable, lp.err)
	}
	return lp.p.Stream(ctx, req, sink)
}
