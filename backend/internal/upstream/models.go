package upstream

import (
	"slices"

	wire "github.com/codingplan/codingplan/shared"
)

// stater is a Provider that may not serve yet: a local model while it loads (lateProvider).
type stater interface {
	// State is "" when the provider serves, else wire.ModelLoading or wire.ModelFailed.
	State() string
}

// Models lists the models plan may use, in configuration order, with the ops each serves,
// which one is the default and whether it still loads: what a hello frame tells the client.
func (r *Router) Models(plan string) []wire.Model {
	var out []wire.Model
	for _, m := range r.list {
		if !r.allowed(plan, m.cfg.Name) {
			continue
		}
		wm := wire.Model{
			Name: m.cfg.Name, Aliases: slices.Clone(m.cfg.Aliases), Ops: slices.Clone(m.cfg.Ops),
			Default: m.cfg.Name == r.defaultName,
		}
		if st, ok := m.provider.(stater); ok {
			wm.State = st.State()
		}
		out = append(out, wm)
	}
	return out
}
