package gateway

import (
	"context"

	"github.com/codingplan/codingplan/backend/internal/lease"
	"github.com/codingplan/codingplan/backend/internal/upstream"
)

// Pool adapts a *lease.Pool to Leaser.
func Pool(p *lease.Pool) Leaser { return poolLeaser{p} }

type poolLeaser struct{ p *lease.Pool }

func (a poolLeaser) Acquire(ctx context.Context, user string, limit int, onQueued func(int)) (Lease, error) {
	l, err := a.p.Acquire(ctx, user, limit, onQueued)
	if err != nil {
		return nil, err // never a typed nil inside the interface
	}
	return l, nil
}

func (a poolLeaser) InUse(ctx context.Context, user string) (int, error) {
	return a.p.InUse(ctx, user)
}

// Routes adapts an *upstream.Router to Router.
func Routes(r *upstream.Router) Router { return routes{r} }

type routes struct{ r *upstream.Router }

func (a routes) Resolve(plan, model string) (upstream.Provider, error) {
	rt, err := a.r.Resolve(plan, model)
	if err != nil {
		return nil, err
	}
	return rt, nil
}

// DefaultModel names the router's default model, for hello.
func (a routes) DefaultModel() string { return a.r.DefaultModel() }
