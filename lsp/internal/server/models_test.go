package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/lsp/internal/config"
	"github.com/codingplan/codingplan/lsp/internal/lspx"
	"github.com/codingplan/codingplan/lsp/internal/remote"
	wire "github.com/codingplan/codingplan/shared"
)

// helloBackend is a websocket backend that says hello with the frames it is given, one now and
// each further one when sent on next, and reads (ignores) the rest.
func helloBackend(t *testing.T, first string, next <-chan string) string {
	t.Helper()
	up := websocket.Upgrader{Subprotocols: []string{wire.Subprotocol}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		if ws.WriteMessage(websocket.TextMessage, []byte(first)) != nil {
			return
		}
		read := make(chan struct{})
		go func() { // owned by the handler, which waits for it below
			defer close(read)
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for {
			select {
			case f := <-next:
				_ = ws.WriteMessage(websocket.TextMessage, []byte(f))
			case <-read:
				return
			}
		}
	}))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + wire.Path
}

// nextStatus waits for a codingplan/status notification with state.
func nextStatus(t *testing.T, c *client, state string) lspx.Status {
	t.Helper()
	for {
		var st lspx.Status
		if err := json.Unmarshal(c.note(lspx.MethodStatus).Params, &st); err != nil {
			t.Fatal(err)
		}
		if st.State == state {
			return st
		}
	}
}

// TestModelCapabilities: with the backend's hello saying the default model serves completion
// only and still loads, the server offers no code action, its status is loading (not ready)
// and says why the actions are missing; a later hello for a model serving edit brings them
// back.
func TestModelCapabilities(t *testing.T) {
	hello := func(models string) string {
		return `{"type":"hello","protocol":1,"server":"test","limits":{"max_frame_bytes":1048576,"max_in_flight":16},` +
			`"plan":{"name":"pro","concurrency":3,"in_use":0},"expires_at":1798761600,"models":` + models + `}`
	}
	next := make(chan string, 1)
	url := helloBackend(t, hello(`[{"name":"local","aliases":["default"],"ops":["completion"],"default":true,"state":"loading"}]`), next)
	rc := remote.New(remote.Config{URL: url, Token: "tok"}, nil)
	c := newClient(t, Config{Backend: rc, Env: config.Env{BackendURL: url, Token: "tok"}}, nil)
	c.initialize(inlineCaps, nil)
	c.open("file:///work/a.go", "go", goSource)

	st := nextStatus(t, c, lspx.StateLoading)
	if st.Model != "local" || !strings.Contains(st.Message, "still loading") ||
		!strings.Contains(st.Unavailable, "no code actions") || !strings.Contains(st.Unavailable, "completions only") {
		t.Errorf("status while loading: %+v", st)
	}
	if got := listActions(t, c, rangeOf(2, 0, 4, 1), []any{addDiagnostic}, nil); len(got) != 0 {
		t.Errorf("actions with a completion-only model: %+v", got)
	}
	var cmd lspx.Status
	c.result("workspace/executeCommand", map[string]any{"command": lspx.CommandStatus}, &cmd)
	if cmd.State != lspx.StateLoading || cmd.Unavailable != st.Unavailable {
		t.Errorf("codingplan.status = %+v, want the notification's %+v", cmd, st)
	}

	next <- hello(`[{"name":"coder","ops":["completion","edit"],"default":true},{"name":"local","ops":["completion"]}]`)
	st = nextStatus(t, c, lspx.StateReady)
	if st.Model != "coder" || st.Unavailable != "" {
		t.Errorf("status with an edit model: %+v", st)
	}
	if got := listActions(t, c, rangeOf(2, 0, 4, 1), []any{addDiagnostic}, nil); len(got) != len(lspx.ActionKinds) {
		t.Errorf("got %d actions with a model serving edit, want %d", len(got), len(lspx.ActionKinds))
	}
}

func TestWithModel(t *testing.T) {
	models := []wire.Model{
		{Name: "local", Aliases: []string{"default"}, Ops: []string{"completion"}, Default: true},
		{Name: "chat", Ops: []string{"completion", "edit"}, State: wire.ModelFailed},
	}
	ready := lspx.Status{State: lspx.StateReady, Message: "connected"}
	tests := []struct {
		name, model string
		in          lspx.Status
		models      []wire.Model
		want        lspx.Status
	}{
		{"no models: as it was", "", ready, nil, ready},
		{"unknown model: as it was", "other", ready, models, ready},
		{"default", "", ready, models, lspx.Status{State: lspx.StateReady, Message: "connected", Model: "local",
			Unavailable: `no code actions (Add documentation, Explain, Write tests, Simplify, Rewrite, Fix): the model "local" serves completions only`}},
		{"by alias", "default", ready, models, lspx.Status{State: lspx.StateReady, Message: "connected", Model: "local",
			Unavailable: `no code actions (Add documentation, Explain, Write tests, Simplify, Rewrite, Fix): the model "local" serves completions only`}},
		{"failed", "chat", ready, models, lspx.Status{State: lspx.StateError, Reason: lspx.ReasonModelFailed, Model: "chat",
			Message: `the model "chat" failed to load on the backend (see the backend's log)`}},
		{"signed out stays signed out", "chat", lspx.Status{State: lspx.StateSignedOut, Message: "m"}, models,
			lspx.Status{State: lspx.StateSignedOut, Message: "m", Model: "chat"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withModel(tt.in, remote.Status{Models: tt.models}, tt.model)
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
