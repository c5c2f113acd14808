package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	wire "github.com/codingplan/codingplan/shared"
)

// States of the local models (LocalLoader.Status), as /readyz shows them.
const (
	LocalLoading = "loading"
	LocalReady   = "ready"
	LocalFailed  = "failed"
)

// errTraining is what a local model answers until it is ready. It wraps ErrUnavailable
// (so the router may fall back to another model) and carries the wire error the client gets.
var errTraining = fmt.Errorf("%w: %w", ErrUnavailable, &wire.Error{
	Code:         wire.CodeUpstreamUnavailable,
	Message:      "the local model is still training (first start only); retry in a minute",
	RetryAfterMS: 5000,
})

// LocalLoader opens the local models in the background, so that the backend listens at once
// even when the first start trains the n-gram model for a minute. Until a model is ready its
// provider answers errTraining, an ErrUnavailable.
type LocalLoader struct {
	open   Factory // LocalFactory
	state  string  // the state dir, to check the configuration up front
	log    *slog.Logger
	stdout io.Writer // progress for the person running the backend
	wg     sync.WaitGroup

	mu       sync.Mutex
	onChange func() // called when a model's loading ends (OnChange)
	started  int
	loading  int
	failed   int
}

// NewLocalLoader returns a LocalLoader that opens models with open (LocalFactory) in the
// background. stateDir is LocalFactory's, log gets the loading's events and stdout a line for
// the person running the backend when a model is ready.
func NewLocalLoader(open Factory, stateDir string, log *slog.Logger, stdout io.Writer) *LocalLoader {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if stdout == nil {
		stdout = io.Discard
	}
	return &LocalLoader{open: open, state: stateDir, log: log, stdout: stdout}
}

// Factory returns the Factory for provider kind "local". It checks the model's configuration
// at once and opens the model on a goroutine of its own that Wait waits for.
func (l *LocalLoader) Factory() Factory {
	return func(m ModelConfig, env Env) (Provider, error) {
		if _, err := LocalConfig(m, l.state); err != nil {
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
			changed := l.onChange
			l.mu.Unlock()
			if changed != nil && !errors.Is(p.err, context.Canceled) {
				changed()
			}
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

// Status is "" with no local model, else LocalLoading (any still loading), LocalFailed or
// LocalReady.
func (l *LocalLoader) Status() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.started == 0:
		return ""
	case l.loading > 0:
		return LocalLoading
	case l.failed > 0:
		return LocalFailed
	}
	return LocalReady
}

// OnChange has f called, on the loading's goroutine, each time a model's loading ends (it is
// ready or failed), so that clients can be told (a new hello). f must not block for long.
func (l *LocalLoader) OnChange(f func()) {
	l.mu.Lock()
	l.onChange = f
	l.mu.Unlock()
}

// Wait waits for every model's loading to end (the context given to LocalFactory cuts it
// short).
func (l *LocalLoader) Wait() { l.wg.Wait() }

// State implements stater: wire.ModelLoading until the model is open, wire.ModelFailed
// when it could not be.
func (lp *lateProvider) State() string {
	select {
	case <-lp.ready:
	default:
		return wire.ModelLoading
	}
	if lp.err != nil {
		return wire.ModelFailed
	}
	return ""
}

// lateProvider is a local model's Provider while it may still be loading.
type lateProvider struct {
	ready chan struct{} // closed when p or err is set
	p     Provider
	err   error
}

func (lp *lateProvider) Stream(ctx context.Context, req *Request, sink Sink) (Result, error) {
	select {
	case <-lp.ready:
	default:
		return Result{}, errTraining
	}
	if lp.err != nil {
		return Result{}, fmt.Errorf("%w: the local model failed to load: %v", ErrUnavailable, lp.err)
	}
	return lp.p.Stream(ctx, req, sink)
}
