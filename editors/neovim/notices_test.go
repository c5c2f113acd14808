package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// noticesInit is an init.lua that records vim.notify calls in _G.e2e_notes and counts the
// statuses of each state in _G.e2e_states, then sets the plugin up with settings (a Lua table).
const noticesInit = `
vim.opt.rtp:prepend(%q)
vim.cmd('runtime plugin/codingplan.lua')
_G.e2e_notes = {}
vim.notify = function(msg, level) table.insert(_G.e2e_notes, { msg = msg, level = level }) end
_G.e2e_states = {}
vim.api.nvim_create_autocmd('User', { pattern = 'CodingplanStatus', callback = function(ev)
  local s = ev.data and ev.data.state or '?'
  _G.e2e_states[s] = (_G.e2e_states[s] or 0) + 1
end })
require('codingplan').setup({ server_path = %q, settings = %s })
`

// startNoticed starts bin on main.go with noticesInit and the token in the environment.
func startNoticed(t *testing.T, e env, bin, settings string) *nvim {
	t.Helper()
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "main.go"), []byte(mainGo), 0o644); err != nil {
		t.Fatal(err)
	}
	initLua := filepath.Join(t.TempDir(), "init.lua")
	if err := os.WriteFile(initLua, []byte(fmt.Sprintf(noticesInit, pluginDir(t), e.lsp, settings)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := start(t, bin, ws, initLua, "main.go", []string{"CODINGPLAN_TOKEN=" + e.token})
	n.t = t
	return n
}

// notes returns the messages vim.notify got that contain substr.
func (n *nvim) notes(substr string) []string {
	n.t.Helper()
	var all []struct {
		Msg string `json:"msg"`
	}
	n.lua(&all, `_G.e2e_notes`)
	var out []string
	for _, x := range all {
		if strings.Contains(x.Msg, substr) {
			out = append(out, x.Msg)
		}
	}
	return out
}

// deadURL is a backend URL where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "ws://" + addr + "/v1/ws"
}

// TestNeovimNotices: an unreachable backend is told once (vim.notify, with the retry time)
// however often the server retries, and :checkhealth says why without claiming a sign-in; with
// the built-in model, which serves completions only, no code action is offered and
// :Codingplan status says why.
func TestNeovimNotices(t *testing.T) {
	e := loadEnv(t)
	for _, bin := range e.nvims {
		t.Run("nvim-"+version(t, bin), func(t *testing.T) {
			t.Run("unreachable backend", func(t *testing.T) {
				n := startNoticed(t, e, bin, fmt.Sprintf(`{ backendUrl = %q }`, deadURL(t)))
				n.poll("three failed attempts", func() (bool, string) {
					var count int
					n.lua(&count, `_G.e2e_states.error or 0`)
					return count >= 3, fmt.Sprint(count, " error statuses")
				})
				got := n.notes("cannot reach the backend")
				if len(got) != 1 || !strings.Contains(got[0], "retrying in") {
					t.Errorf("notifications about the unreachable backend: %q, want one with the retry time", got)
				}
				n.send(":checkhealth codingplan<CR>")
				var text string
				n.poll("the health report", func() (bool, string) {
					n.lua(&text, `table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')`)
					return strings.Contains(text, "not connected"), text
				})
				if strings.Contains(text, "signed in") || !strings.Contains(text, "cannot reach the backend") {
					t.Errorf("checkhealth contradicts itself or does not say why:\n%s", text)
				}
			})

			t.Run("built-in model", func(t *testing.T) {
				n := startNoticed(t, e, bin, fmt.Sprintf(`{ backendUrl = %q, model = 'local' }`, e.backendURL))
				n.poll("the status naming the model", func() (bool, string) {
					var model string
					n.lua(&model, `(require('codingplan.status').get() or {}).model or ''`)
					return model == "local", model
				})
				var kinds []string
				n.lua(&kinds, `(function()
  local kinds = {}
  local params = { textDocument = vim.lsp.util.make_text_document_params(0),
    range = { start = { line = 4, character = 0 }, ['end'] = { line = 6, character = 1 } },
    context = { diagnostics = {} } }
  for _, r in pairs(vim.lsp.buf_request_sync(0, 'textDocument/codeAction', params, 5000) or {}) do
    for _, a in ipairs(r.result or {}) do table.insert(kinds, a.kind or a.title) end
  end
  return kinds
end)()`)
				if len(kinds) != 0 {
					t.Errorf("code actions with the built-in model: %q, want none", kinds)
				}
				n.send(":Codingplan status<CR>")
				n.poll("the status saying why", func() (bool, string) {
					got := n.notes("no code actions")
					return len(got) == 1 && strings.Contains(got[0], "local"), strings.Join(got, " | ")
				})
			})
		})
	}
}
