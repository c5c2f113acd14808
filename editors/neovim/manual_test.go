package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestNeovimManualMode: with settings.automatic = false the server answers the inline
// completions asked while typing with none, and the trigger key (Alt+\, keymaps.trigger) asks
// for one and shows it.
func TestNeovimManualMode(t *testing.T) {
	e := loadEnv(t)
	for _, bin := range e.nvims {
		v := version(t, bin)
		t.Run("nvim-"+v, func(t *testing.T) {
			ws := workspace(t)
			initLua := filepath.Join(t.TempDir(), "init.lua")
			cfg := fmt.Sprintf(`
vim.opt.rtp:prepend(%q)
vim.cmd('runtime plugin/codingplan.lua')
require('codingplan').setup({ server_path = %q, settings = { backendUrl = %q, automatic = false } })
`, pluginDir(t), e.lsp, e.backendURL)
			if err := os.WriteFile(initLua, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			n := start(t, bin, ws, initLua, "main.go", []string{"CODINGPLAN_TOKEN=" + e.token})
			var minor int
			fmt.Sscanf(v, "0.%d", &minor)
			ns := "codingplan.ghost"
			if minor >= 12 {
				ns = "nvim.lsp.inline_completion"
			}
			n.poll("ready", func() (bool, string) {
				var s string
				n.lua(&s, `require('codingplan').statusline()`)
				return s == "codingplan: ready", s
			})
			n.send("6GA")
			n.send("fmt.Pr")
			// What the server answers an automatic request here (triggerKind 2): nothing.
			var items int
			n.lua(&items, `(function()
				local c = vim.lsp.get_clients({ name = 'codingplan', bufnr = 0 })[1]
				local p = vim.lsp.util.make_position_params(0, c.offset_encoding)
				p.context = { triggerKind = 2 }
				local r = require('codingplan.lsp').request_sync(c, 'textDocument/inlineCompletion', p, 10000, 0)
				return r and r.result and #(r.result.items or r.result) or -1
			end)()`)
			if items != 0 {
				t.Errorf("manual mode: an automatic request got %d items, want 0", items)
			}
			n.send("<M-Bslash>")
			n.poll("ghost text after the trigger key", func() (bool, string) {
				g := n.ghost(ns)
				return g == e.expect, g
			})
		})
	}
}
