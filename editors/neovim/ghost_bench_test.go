package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ghostProbe is Lua for init.lua that times ghost text inside Neovim, on its own clock:
// ghost_arm(key, want) notes when `key` is next typed (vim.on_key) and then the first moment
// the built-in inline completion's extmarks show text containing `want` (checked every
// millisecond), in _G.ghost_probe (hrtime nanoseconds).
const ghostProbe = `
_G.ghost_probe = {}
local ghost = ` + ghostLua + `
function _G.ghost_arm(key, want)
  _G.ghost_probe = { key = vim.keycode(key), want = want }
end
vim.on_key(function(key, typed)
  local p = _G.ghost_probe
  if p.key and not p.t0 and ((typed and typed ~= '') and typed or key) == p.key then
    p.t0 = vim.uv.hrtime()
  end
end)
local timer = vim.uv.new_timer()
timer:start(1, 1, vim.schedule_wrap(function()
  local p = _G.ghost_probe
  if p.t0 and not p.t1 then
    local g = ghost('nvim.lsp.inline_completion')
    if g:find(p.want, 1, true) then
      p.t1, p.text = vim.uv.hrtime(), g
    end
  end
end))
`

// probe is _G.ghost_probe.
type probe struct {
	T0, T1 float64
	Text   string
}

// TestGhostLatency measures keystroke-to-ghost-text in Neovim 0.12 (its built-in inline
// completion) with a multi-line reply streamed slowly (scripts/bench-ghost.sh sets it up through
// scripts/e2e.sh): Enter at the end of "func main() {" opens a blank line in the body, a
// multi-line request. Each run, in a context nobody has seen (a comment naming the run), times
// Enter to the first ghost text, and, when that was not the whole block, Tab (accept) to the
// next line's ghost text; block is Enter to the last line of the block shown. Times are taken
// inside Neovim; run 0 warms up and is not counted. CODINGPLAN_E2E_GHOST_READ_MS, when set, is
// how long the user reads the first line before Tab (default: Tab as soon as it shows). CODINGPLAN_E2E_GHOST_RUNS runs; CODINGPLAN_E2E_GHOST_BLOCK the reply.
func TestGhostLatency(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("CODINGPLAN_E2E_GHOST_RUNS"))
	if runs <= 0 {
		t.Skip("set CODINGPLAN_E2E_GHOST_RUNS: run scripts/bench-ghost.sh")
	}
	e := loadEnv(t)
	readMS, _ := strconv.Atoi(os.Getenv("CODINGPLAN_E2E_GHOST_READ_MS"))
	lines := strings.Split(os.Getenv("CODINGPLAN_E2E_GHOST_BLOCK"), "\n")
	if len(lines) < 3 {
		t.Fatal("CODINGPLAN_E2E_GHOST_BLOCK must be a block of three lines or more")
	}
	first, second, last := lines[0], strings.TrimSpace(lines[1]), strings.TrimSpace(lines[len(lines)-1])
	var bin string
	for _, b := range e.nvims {
		if v := version(t, b); v >= "0.12" {
			bin = b
		}
	}
	if bin == "" {
		t.Fatal("no Neovim 0.12 in CODINGPLAN_E2E_NVIM")
	}

	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "go.mod"), []byte("module example.com/e2e\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "main.go"), []byte(mainGo), 0o644); err != nil {
		t.Fatal(err)
	}
	initLua := filepath.Join(t.TempDir(), "init.lua")
	cfg := fmt.Sprintf(`
vim.opt.rtp:prepend(%q)
vim.cmd('runtime plugin/codingplan.lua')
require('codingplan').setup({ server_path = %q, settings = { backendUrl = %q, token = %q } })
`, pluginDir(t), e.lsp, e.backendURL, e.token) + ghostProbe
	if err := os.WriteFile(initLua, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	n := start(t, bin, ws, initLua, "main.go", nil)
	n.poll("ready", func() (bool, string) {
		var s string
		n.lua(&s, `require('codingplan').statusline()`)
		return s == "codingplan: ready", s
	})

	// do runs Lua statements in the editor.
	do := func(code string) { n.lua(new(any), "(function() "+code+" return true end)()") }
	// await arms the probe for key and want, types keys (which end with key) and returns the
	// probe once want shows.
	await := func(key, keys, want string) probe {
		do(fmt.Sprintf("_G.ghost_arm(%q, %q)", key, want))
		n.send(keys)
		var p probe
		n.poll(fmt.Sprintf("ghost text with %q after %s", want, key), func() (bool, string) {
			n.lua(&p, `_G.ghost_probe`)
			var lines []string
			n.lua(&lines, `vim.api.nvim_buf_get_lines(0, 5, 9, false)`)
			return p.T1 > 0, fmt.Sprintf("%+v; lines 6-9 %q, ghost %q", p, lines, n.ghost("nvim.lsp.inline_completion"))
		})
		return p
	}
	var firsts, nexts, blocks []float64
	ms := func(ns float64) float64 { return ns / float64(time.Millisecond) }
	for i := range runs + 1 {
		doc := fmt.Sprintf("// run %d %d\n%s", i, time.Now().UnixNano(), mainGo)
		n.send("<Esc>")
		do(fmt.Sprintf("vim.api.nvim_buf_set_lines(0, 0, -1, false, vim.split(%q, '\\n'))", strings.TrimSuffix(doc, "\n")))
		// Line 6 is "func main() {". Insert mode and Enter in one batch of keys: the built-in asks
		// 200 ms after the cursor last moved in insert mode, so nothing is asked at the end of
		// line 6 however slowly the keys come.
		n.send("6G")
		p := await("<CR>", "A<CR>", first)
		toFirst, toBlock, toNext := ms(p.T1-p.T0), ms(p.T1-p.T0), -1.0
		line := fmt.Sprintf("ghost-bench editor=neovim-0.12 run=%d first_ms=%.1f", i, toFirst)
		if strings.Contains(p.Text, last) {
			line += fmt.Sprintf(" block_ms=%.1f (whole block at once)", toBlock)
		} else {
			time.Sleep(time.Duration(readMS) * time.Millisecond) // the user reading, not a wait for a state
			q := await("<Tab>", "<Tab>", second)
			toNext, toBlock = ms(q.T1-q.T0), ms(q.T1-p.T0)
			line += fmt.Sprintf(" next_ms=%.1f block_ms=%.1f", toNext, toBlock)
		}
		if i == 0 {
			t.Log(line + " (warm-up)")
			continue
		}
		t.Log(line)
		firsts, blocks = append(firsts, toFirst), append(blocks, toBlock)
		if toNext >= 0 {
			nexts = append(nexts, toNext)
		}
	}
	t.Logf("ghost-bench editor=neovim-0.12 runs=%d median first_ms=%.1f next_ms=%s block_ms=%.1f",
		runs, median(firsts), medianOrNone(nexts), median(blocks))
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianOrNone(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", median(xs))
}
