package server

import (
	"fmt"
	"slices"

	"github.com/codingplan/codingplan/lsp/internal/lspx"
	"github.com/codingplan/codingplan/lsp/internal/remote"
	wire "github.com/codingplan/codingplan/shared"
)

// What the model serves. The backend's hello lists the plan's models with the ops each serves
// and whether it still loads (docs/protocol.md); the server offers only what the model its
// requests go to (the model setting, else the backend's default) can serve, and says why the
// rest is missing in the status.

// modelOf returns the entry of models for the model setting name ("" for the default); nil
// when the backend listed no models or none matches (then everything is offered and the
// backend answers for itself).
func modelOf(models []wire.Model, name string) *wire.Model {
	for i := range models {
		m := &models[i]
		if name == "" && m.Default || name != "" && (m.Name == name || slices.Contains(m.Aliases, name)) {
			return m
		}
	}
	return nil
}

// serves reports whether the model the settings choose serves op, as far as st knows.
func serves(st remote.Status, model, op string) bool {
	m := modelOf(st.Models, model)
	return m == nil || m.Serves(op)
}

// withModel adds to out what st's models say of the model the settings choose: its name, the
// features it cannot serve, and a loading or failed state in place of ready.
func withModel(out lspx.Status, st remote.Status, model string) lspx.Status {
	m := modelOf(st.Models, model)
	if m == nil {
		return out
	}
	out.Model = m.Name
	switch {
	case !m.Serves(wire.OpEdit) && !m.Serves(wire.OpCompletion):
		out.Unavailable = fmt.Sprintf("no completions and no code actions: the model %q serves neither", m.Name)
	case !m.Serves(wire.OpEdit):
		out.Unavailable = fmt.Sprintf("no code actions (Add documentation, Explain, Write tests, Simplify, Rewrite, Fix): the model %q serves completions only", m.Name)
	case !m.Serves(wire.OpCompletion):
		out.Unavailable = fmt.Sprintf("no completions: the model %q serves code actions only", m.Name)
	}
	if out.State != lspx.StateReady && out.State != lspx.StateBusy {
		return out
	}
	switch m.State {
	case wire.ModelLoading:
		out.State, out.Reason = lspx.StateLoading, lspx.ReasonModelLoading
		out.Message = fmt.Sprintf("the model %q is still loading on the backend (its first start trains it, about a minute)", m.Name)
	case wire.ModelFailed:
		out.State, out.Reason = lspx.StateError, lspx.ReasonModelFailed
		out.Message = fmt.Sprintf("the model %q failed to load on the backend (see the backend's log)", m.Name)
	}
	return out
}
