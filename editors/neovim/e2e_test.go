// Package e2e drives the Neovim plugin in real Neovim processes (0.10 and 0.12, headless with
// --listen), from outside, as a user would: keys go in through `nvim --server S --remote-send`,
// state comes out through `--remote-expr`. The plugin talks to the real codingplan-lsp, which
// talks to a real backend and the test provider; scripts/e2e.sh (make test-e2e) starts those
// and sets:
//
//	CODINGPLAN_E2E_NVIM          space-separated nvim executables (scripts/install-neovim.sh)
//	CODINGPLAN_E2E_LSP           codingplan-lsp
//	CODINGPLAN_E2E_BACKEND_URL   ws://.../v1/ws
//	CODINGPLAN_E2E_NVIM_TOKEN    a token
//	CODINGPLAN_E2E_EXPECT        what the test provider completes after "fmt.Pr"
//	CODINGPLAN_E2E_CHOICES       every choice it gives when asked for several, a JSON array
//
// Without them the test skips, unless CODINGPLAN_REQUIRE_E2E=1.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wait bounds every poll: polls end on what they wait for, the bound only turns a hang into a
// failure.
const wait = 30 * time.Second

type env struct {
	nvims      []string
	lsp        string
	backendURL string
	token      string
	expect     string
	choices    []string // optional: CODINGPLAN_E2E_CHOICES
}

func loadEnv(t *testing.T) env {
	t.Helper()
	e := env{
		nvims:      strings.Fields(os.Getenv("CODINGPLAN_E2E_NVIM")),
		lsp:        os.Getenv("CODINGPLAN_E2E_LSP"),
		backendURL: os.Getenv("CODINGPLAN_E2E_BACKEND_URL"),
		token:      os.Getenv("CODINGPLAN_E2E_NVIM_TOKEN"),
		expect:     os.Getenv("CODINGPLAN_E2E_EXPECT"),
	}
	if len(e.nvims) == 0 || e.lsp == "" || e.backendURL == "" || e.token == "" || e.expect == "" {
		if os.Getenv("CODINGPLAN_REQUIRE_E2E") == "1" {
			t.Fatal("CODINGPLAN_E2E_* not set: run make test-e2e")
		}
		t.Skip("editor end-to-end test: run make test-e2e")
	}
	if c := os.Getenv("CODINGPLAN_E2E_CHOICES"); c != "" {
		if err := json.Unmarshal([]byte(c), &e.choices); err != nil {
			t.Fatalf("CODINGPLAN_E2E_CHOICES: %v", err)
		}
	}
	return e
}

func pluginDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Dir(file)
}

// nvim is one running headless Neovim and the way to reach it.
type nvim struct {
	t    *testing.T
	bin  string
	sock string
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs bin headless with init.lua, listening on a socket, editing file in dir.
func start(t *testing.T, bin, dir, initLua, file string, extraEnv []string) *nvim {
	t.Helper()
	home := t.TempDir()
	xdg := []string{"HOME=" + home}
	for _, v := range []string{"CONFIG", "DATA", "STATE", "CACHE"} {
		xdg = append(xdg, fmt.Sprintf("XDG_%s_HOME=%s", v, filepath.Join(home, strings.ToLower(v))))
	}
	env := append(append(append(os.Environ(), xdg...), "CODINGPLAN_TOKEN="), extraEnv...)
	n := &nvim{t: t, bin: bin, sock: filepath.Join(home, "nvim.sock"), env: env, done: make(chan struct{})}
	n.cmd = exec.Command(bin, "--headless", "--clean", "-u", initLua, "--listen", n.sock, file)
	n.cmd.Dir = dir
	n.cmd.Env = env
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the language server is its child
	logPath := filepath.Join(home, "nvim.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// Its stdout is the headless screen echo (the sign-in prompt's answer included): dropped.
	n.cmd.Stderr = logFile
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		_ = n.cmd.Wait()
		logFile.Close()
		close(n.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			if msgs, err := n.exprErr(`execute('messages')`); err == nil {
				t.Logf("nvim :messages:\n%s", msgs)
			}
			if b, err := os.ReadFile(logPath); err == nil && len(b) > 0 {
				t.Logf("nvim stderr:\n%s", b)
			}
		}
		_ = exec.Command(bin, "--clean", "--headless", "--server", n.sock, "--remote-send", `<C-\><C-N>:qa!<CR>`).Run()
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
		}
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.done
	})
	n.poll("the RPC socket", func() (bool, string) {
		_, err := os.Stat(n.sock)
		return err == nil, fmt.Sprint(err)
	})
	return n
}

func (n *nvim) exprErr(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin, "--clean", "--headless", "--server", n.sock, "--remote-expr", expr)
	cmd.Env = n.env
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("%s: %w: %s", expr, err, ee.Stderr)
		}
		return "", fmt.Errorf("%s: %w", expr, err)
	}
	return string(out), nil
}

// expr evaluates a Vim expression in the editor.
func (n *nvim) expr(expr string) string {
	n.t.Helper()
	out, err := n.exprErr(expr)
	if err != nil {
		n.t.Fatal(err)
	}
	return out
}

// lua evaluates a Lua expression in the editor; the result is JSON-encoded there and decoded
// into v.
func (n *nvim) lua(v any, code string) {
	n.t.Helper()
	out := n.expr(`luaeval('vim.json.encode(` + strings.ReplaceAll(code, "'", "''") + `)')`)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		n.t.Fatalf("lua %s: %q: %v", code, out, err)
	}
}

// send types keys (with <> notation) into the editor.
func (n *nvim) send(keys string) {
	n.t.Helper()
	cmd := exec.Command(n.bin, "--clean", "--headless", "--server", n.sock, "--remote-send", keys)
	cmd.Env = n.env
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("remote-send %q: %v: %s", keys, err, out)
	}
}

// poll calls f until it reports true, failing the test after the deadline with f's last word.
func (n *nvim) poll(what string, f func() (bool, string)) time.Duration {
	n.t.Helper()
	start := time.Now()
	var last string
	for time.Since(start) < wait {
		ok, msg := f()
		if ok {
			return time.Since(start)
		}
		last = msg
		select {
		case <-n.done:
			n.t.Fatalf("nvim exited while waiting for %s", what)
		case <-time.After(20 * time.Millisecond): // polling another process's state
		}
	}
	n.t.Fatalf("timed out after %v waiting for %s (last: %s)", wait, what, last)
	return 0
}

func (n *nvim) line(nr int) string {
	n.t.Helper()
	var s string
	n.lua(&s, fmt.Sprintf("vim.api.nvim_buf_get_lines(0, %d, %d, false)[1]", nr-1, nr))
	return s
}

// ghost returns what the ghost-text extmarks show: those of the plugin's namespace on 0.10/0.11,
// those of the built-in vim.lsp.inline_completion on 0.12.
func (n *nvim) ghost(ns string) string {
	n.t.Helper()
	var s string
	n.lua(&s, fmt.Sprintf(`(%s)(%q)`, ghostLua, ns))
	return s
}

// ghostLua is a Lua function of a namespace's name that returns what its extmarks show in the
// current buffer: virtual text, and virtual lines after a line break each.
const ghostLua = `function(ns)
	local id = vim.api.nvim_get_namespaces()[ns]
	if not id then return '' end
	local out = {}
	for _, m in ipairs(vim.api.nvim_buf_get_extmarks(0, id, 0, -1, { details = true })) do
		for _, c in ipairs(m[4].virt_text or {}) do table.insert(out, c[1]) end
		for _, l in ipairs(m[4].virt_lines or {}) do
			table.insert(out, '\n')
			for _, c in ipairs(l) do table.insert(out, c[1]) end
		end
	end
	return table.concat(out)
end`

func version(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	v := strings.TrimPrefix(first, "NVIM v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("%s: version %q", bin, first)
	}
	return parts[0] + "." + parts[1]
}

// TestLua runs the plugin's unit tests (tests/unit.lua) in each Neovim.
func TestLua(t *testing.T) {
	nvims := strings.Fields(os.Getenv("CODINGPLAN_E2E_NVIM"))
	if len(nvims) == 0 {
		if os.Getenv("CODINGPLAN_REQUIRE_E2E") == "1" {
			t.Fatal("CODINGPLAN_E2E_NVIM not set: run make test-e2e")
		}
		t.Skip("needs Neovim: run make test-e2e")
	}
	for _, bin := range nvims {
		t.Run("nvim-"+version(t, bin), func(t *testing.T) {
			cmd := exec.Command(bin, "--clean", "-l", filepath.Join(pluginDir(t), "tests", "unit.lua"))
			cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("tests/unit.lua: %v\n%s", err, out)
			}
			t.Logf("%s", bytes.TrimSpace(out))
		})
	}
}

const mainGo = "package main\n\nimport \"fmt\"\n\nfunc main() {\n\t\n}\n"

func TestNeovim(t *testing.T) {
	e := loadEnv(t)
	for _, bin := range e.nvims {
		v := version(t, bin)
		t.Run("nvim-"+v, func(t *testing.T) {
			testNeovim(t, e, bin, v)
		})
	}
}

// workspace returns a new directory holding go.mod and main.go (mainGo).
func workspace(t *testing.T) string {
	t.Helper()
	ws := t.TempDir()
	for name, text := range map[string]string{"go.mod": "module example.com/e2e\n\ngo 1.22\n", "main.go": mainGo} {
		if err := os.WriteFile(filepath.Join(ws, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

func testNeovim(t *testing.T, e env, bin, v string) {
	ws := workspace(t)
	initLua := filepath.Join(t.TempDir(), "init.lua")
	cfg := fmt.Sprintf(`
vim.opt.rtp:prepend(%q)
vim.cmd('runtime plugin/codingplan.lua')
-- Answers queued by the test for vim.ui.input prompts; with none queued, the real prompt.
_G.e2e_answers = {}
local input = vim.ui.input
vim.ui.input = function(opts, on_confirm)
  if #_G.e2e_answers > 0 then
    return on_confirm(table.remove(_G.e2e_answers, 1))
  end
  return input(opts, on_confirm)
end
-- The user's own Tab mapping, from before the plugin: Tab must still reach it.
vim.keymap.set('i', '<Tab>', function() return '<Tab>user' end, { expr = true })
require('codingplan').setup({ server_path = %q, settings = { backendUrl = %q } })
-- A second call with the same options changes nothing.
require('codingplan').setup({ server_path = %q, settings = { backendUrl = %q } })
`, pluginDir(t), e.lsp, e.backendURL, e.lsp, e.backendURL)
	if err := os.WriteFile(initLua, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	n := start(t, bin, ws, initLua, "main.go", nil)
	var minor int
	fmt.Sscanf(v, "0.%d", &minor)
	native := minor >= 12 // the built-in vim.lsp.inline_completion
	ns := "codingplan.ghost"
	if native {
		ns = "nvim.lsp.inline_completion"
	}
	statusline := func(want string) func() (bool, string) {
		return func() (bool, string) {
			var s string
			n.lua(&s, `require('codingplan').statusline()`)
			return s == want, s
		}
	}

	t.Run("signin", func(t *testing.T) {
		n.t = t
		n.poll("signed out", statusline("codingplan: signed out"))
		// The prompt is vim.ui.input (input() here), which reads the keys typed after the
		// command: the user's answer.
		n.send(":Codingplan token<CR>" + e.token + "<CR>")
		d := n.poll("ready", statusline("codingplan: ready"))
		t.Logf("ready %v after sign-in", d.Round(time.Millisecond))
	})

	t.Run("ghost text", func(t *testing.T) {
		n.t = t
		n.send("6GA")
		n.send("fmt.Pr")
		d := n.poll("ghost text in "+ns, func() (bool, string) {
			g := n.ghost(ns)
			return g == e.expect, g
		})
		t.Logf("ghost text %v after the last keystroke", d.Round(time.Millisecond))
	})

	word := e.expect
	if i := strings.IndexAny(word, "(. \""); i > 0 {
		word = word[:i]
	}
	t.Run("accept word", func(t *testing.T) {
		n.t = t
		n.send("<M-Right>")
		want := "\tfmt.Pr" + word
		n.poll("one word accepted", func() (bool, string) {
			l := n.line(6)
			return l == want, l
		})
		n.poll("the rest of the ghost text", func() (bool, string) {
			g := n.ghost(ns)
			return g == strings.TrimPrefix(e.expect, word), g
		})
	})

	t.Run("accept", func(t *testing.T) {
		n.t = t
		n.send("<Tab>")
		want := "\tfmt.Pr" + e.expect
		n.poll("the suggestion accepted", func() (bool, string) {
			l := n.line(6)
			return l == want, l
		})
	})

	t.Run("cycle to the second suggestion", func(t *testing.T) {
		n.t = t
		testCycle(t, n, e, ns)
	})

	t.Run("tab falls through without ghost text", func(t *testing.T) {
		n.t = t
		// One batch of keys: the Tab arrives before any suggestion for the new line could, so
		// it goes to the user's mapping.
		n.send("<Esc>o<Tab>")
		n.poll("the user's Tab mapping", func() (bool, string) {
			l := n.line(7)
			return l == "\t\tuser", fmt.Sprintf("%q", l)
		})
		n.send("<Esc>")
	})

	// buffer returns main.go's text, whichever window has the focus.
	buffer := func() string {
		var text string
		n.lua(&text, fmt.Sprintf(`table.concat(vim.api.nvim_buf_get_lines(vim.fn.bufnr(%q), 0, -1, false), '\n')`,
			filepath.Join(ws, "main.go")))
		return text
	}
	// action runs the code action of kind on the lines from to to (ending at column 1 of to, or
	// at the start of line to+1 with to negative).
	action := func(kind string, from, to int) {
		end := fmt.Sprintf("{ %d, 1 }", to)
		if to < 0 {
			end = fmt.Sprintf("{ %d, 0 }", -to+1)
		}
		n.expr(fmt.Sprintf(`luaeval('vim.lsp.buf.code_action({ apply = true, range = { start = { %d, 0 }, ["end"] = %s }, `+
			`filter = function(a) return a.kind == "%s" end })')`, from, end, kind))
	}
	// preview waits for the diff float of a code action's edit and returns its text.
	preview := func() string {
		var diff string
		n.poll("the edit's preview", func() (bool, string) {
			n.lua(&diff, `(function()
				local p = require('codingplan.preview').open
				if not p or not vim.api.nvim_win_is_valid(p) or vim.api.nvim_get_current_win() ~= p then return '' end
				local b = vim.api.nvim_win_get_buf(p)
				return vim.bo[b].filetype .. '\n' .. table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\n')
			end)()`)
			return strings.HasPrefix(diff, "diff\n"), diff
		})
		return strings.TrimPrefix(diff, "diff\n")
	}

	t.Run("write tests creates main_test.go", func(t *testing.T) {
		n.t = t
		n.send("<Esc>")
		before := buffer()
		// "Write tests" for func main (lines 5-8): the server asks the model when the command
		// runs and puts its answer in main_test.go, created beside main.go, after a preview.
		action("refactor.codingplan.tests", 5, 8)
		diff := preview()
		if !strings.Contains(diff, "+++ main_test.go") || !strings.Contains(diff, "+"+e.expect) {
			t.Errorf("preview:\n%s\nwant main_test.go gaining %q", diff, e.expect)
		}
		if _, err := os.Stat(filepath.Join(ws, "main_test.go")); err == nil {
			t.Errorf("main_test.go exists before the preview was accepted")
		}
		n.send("a")
		n.poll("main_test.go with the tests", func() (bool, string) {
			var text string
			n.lua(&text, fmt.Sprintf(`(function()
				local b = vim.fn.bufnr(%q)
				if b < 0 or not vim.api.nvim_buf_is_loaded(b) then return '' end
				return table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\n')
			end)()`, filepath.Join(ws, "main_test.go")))
			return strings.Contains(text, e.expect), text
		})
		if _, err := os.Stat(filepath.Join(ws, "main_test.go")); err != nil {
			t.Errorf("main_test.go was not created: %v", err)
		}
		if after := buffer(); after != before {
			t.Errorf("main.go changed:\n%s\nwas\n%s", after, before)
		}
	})

	t.Run("explain opens the whole answer as markdown", func(t *testing.T) {
		n.t = t
		action("refactor.codingplan.explain", 5, 8)
		n.poll("the explanation's float", func() (bool, string) {
			var got string
			n.lua(&got, `(function()
				local b = require('codingplan.markdown').last
				if not b or not vim.api.nvim_buf_is_valid(b) or vim.api.nvim_get_current_buf() ~= b then return '' end
				return vim.bo[b].filetype .. '\n' .. table.concat(vim.api.nvim_buf_get_lines(b, 0, -1, false), '\n')
			end)()`)
			return strings.HasPrefix(got, "markdown\n# Explain: main.go, lines 5–8") && strings.HasSuffix(got, e.expect), got
		})
		n.send("q")
		n.poll("the float closed", func() (bool, string) {
			var name string
			n.lua(&name, `vim.fn.fnamemodify(vim.api.nvim_buf_get_name(0), ':t')`)
			return name == "main.go", name
		})
	})

	t.Run("rewrite action asks for an instruction", func(t *testing.T) {
		n.t = t
		var before string
		n.lua(&before, `table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')`)
		n.expr(`luaeval('table.insert(_G.e2e_answers, "make it shorter")')`)
		// "Rewrite…" carries the codingplan.rewrite command, which the plugin handles on the
		// client side: it asks for the instruction, then runs the server's rewrite.
		n.expr(`luaeval('vim.lsp.buf.code_action({ apply = true, range = { start = { 5, 0 }, ["end"] = { 7, 1 } }, ` +
			`filter = function(a) return a.kind == "refactor.rewrite.codingplan.rewrite" end })')`)
		// The buffer already holds the reply (accepted on line 6, inserted by the code action),
		// so "contains the reply" proves nothing: lines 1-4 and 8 on must stay as they were,
		// and what replaced the selection (func main() { ... line 7) must be the reply, not
		// nothing and not the old lines.
		preview()
		n.send("a")
		lines := strings.Split(before, "\n")
		head, tail := strings.Join(lines[:4], "\n")+"\n", "\n"+strings.Join(lines[7:], "\n")
		n.poll("the rewrite's edit", func() (bool, string) {
			var after string
			n.lua(&after, `table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')`)
			if after == before || len(after) < len(head)+len(tail) || !strings.HasPrefix(after, head) || !strings.HasSuffix(after, tail) {
				return false, after
			}
			mid := after[len(head) : len(after)-len(tail)]
			return strings.Contains(mid, e.expect) && !strings.Contains(mid, "func main") && !strings.Contains(mid, "fmt.Pr"), after
		})
		var left int
		n.lua(&left, `#_G.e2e_answers`)
		if left != 0 {
			t.Errorf("the instruction prompt was not shown (%d answers left)", left)
		}
	})

	t.Run("add documentation applies only after accept", func(t *testing.T) {
		n.t = t
		before := buffer()
		action("refactor.rewrite.codingplan.document", 1, -1) // package main
		if diff := preview(); !strings.Contains(diff, "+"+e.expect) {
			t.Errorf("preview:\n%s\nwant the reply added", diff)
		}
		n.send("r") // discard
		n.poll("the preview closed", func() (bool, string) {
			var open bool
			n.lua(&open, `require('codingplan.preview').open ~= nil`)
			return !open, "open"
		})
		if after := buffer(); after != before {
			t.Fatalf("a discarded preview changed the buffer:\n%s", after)
		}
		action("refactor.rewrite.codingplan.document", 1, -1) // package main
		preview()
		if after := buffer(); after != before {
			t.Fatalf("the buffer changed before the preview was accepted:\n%s", after)
		}
		n.send("a")
		n.poll("the documentation applied", func() (bool, string) {
			after := buffer()
			return after != before && strings.Contains(after, e.expect), after
		})
		n.send("u") // one undo takes it back
		n.poll("undone in one step", func() (bool, string) {
			after := buffer()
			return after == before, after
		})
	})

	t.Run("cancel stops a running action", func(t *testing.T) {
		n.t = t
		// The test provider's "hang" model never answers: the action runs until cancelled.
		setModel := func(model string) {
			n.expr(fmt.Sprintf(`luaeval('(function()
				local lsp = require("codingplan.lsp")
				for _, c in ipairs(lsp.clients()) do
					c.settings.codingplan.model = %q
					lsp.notify(c, "workspace/didChangeConfiguration", { settings = c.settings })
				end
			end)()')`, model))
		}
		setModel("hang")
		defer setModel("")
		running := func() int {
			var k int
			n.lua(&k, `vim.tbl_count(require('codingplan.progress').running)`)
			return k
		}
		action("refactor.rewrite.codingplan.simplify", 1, -1)
		n.poll("the action running", func() (bool, string) {
			k := running()
			return k == 1, fmt.Sprint(k)
		})
		n.send(":Codingplan cancel<CR>")
		n.poll("the action cancelled", func() (bool, string) {
			var msgs string
			n.lua(&msgs, `vim.fn.execute('messages') .. vim.v.statusmsg`)
			return running() == 0, msgs
		})
		var open bool
		n.lua(&open, `require('codingplan.preview').open ~= nil`)
		if open {
			t.Errorf("a cancelled action opened a preview")
		}
	})

	t.Run("checkhealth", func(t *testing.T) {
		n.t = t
		n.send(":checkhealth codingplan<CR>")
		var text string
		n.poll("the health report", func() (bool, string) {
			n.lua(&text, `table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')`)
			return strings.Contains(text, "connected"), text
		})
		for _, want := range []string{"OK binary:", "OK version: codingplan-lsp", "OK signed in", "OK connected: ready"} {
			if !strings.Contains(text, want) {
				t.Errorf("checkhealth lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "ERROR") || strings.Contains(text, "❌") {
			t.Errorf("checkhealth reports an error:\n%s", text)
		}
	})
}

// hint is what 0.12's vim.lsp.inline_completion.select() appends to the ghost text: " (2/3)".
var hint = regexp.MustCompile(` \(\d+/\d+\)$`)

// testCycle: on line 6, retyped to "\tfmt.Pr", the plugin's next-suggestion key (Alt+]) first
// asks explicitly (an invoked inline completion, for which the server returns up to three
// different suggestions) and shows the first, pressed again shows the second, and Tab
// accepts that one. It leaves line 6 completed and the editor in insert mode at its end.
func testCycle(t *testing.T, n *nvim, e env, ns string) {
	n.send("<Esc>6G^C")
	n.send("fmt.Pr")
	n.poll("ghost text", func() (bool, string) {
		g := n.ghost(ns)
		return g == e.expect, g
	})

	// What the server answers to an explicit request here, each item applied to the line. This
	// answer decides the skip below, until the server returns several suggestions.
	var probe struct {
		N     int      `json:"n"`
		Lines []string `json:"lines"`
		Err   string   `json:"err"`
	}
	n.lua(&probe, `(function()
		local client = vim.lsp.get_clients({ name = 'codingplan', bufnr = 0 })[1]
		local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
		params.context = { triggerKind = 1 }
		local resp = vim.lsp.buf_request_sync(0, 'textDocument/inlineCompletion', params, 10000) or {}
		local r = resp[client.id]
		if not r or r.err or not r.result then return { n = 0, err = vim.inspect(r) } end
		local line = vim.api.nvim_get_current_line()
		local col = vim.api.nvim_win_get_cursor(0)[2]
		local out = { n = 0, lines = {} }
		for _, it in ipairs(r.result.items or r.result) do
			local text = type(it.insertText) == 'string' and it.insertText or it.insertText.value
			-- The line is ASCII: UTF-16 offsets are byte offsets.
			local s, e = col, col
			if it.range then s, e = it.range.start.character, it.range['end'].character end
			out.n = out.n + 1
			table.insert(out.lines, line:sub(1, s) .. text .. line:sub(e + 1))
		end
		if out.n == 0 then out.lines = nil end
		return out
	end)()`)
	if probe.Err != "" {
		t.Fatalf("explicit inline completion: %s", probe.Err)
	}
	if probe.N < 2 {
		t.Fatalf("explicit inline completion returned %d item(s), want several", probe.N)
	}
	seen := map[string]bool{}
	for _, l := range probe.Lines {
		if seen[l] {
			t.Fatalf("the server's suggestions are not distinct: %q", probe.Lines)
		}
		seen[l] = true
		if len(e.choices) > 0 && !slices.Contains(e.choices, strings.TrimPrefix(l, "\tfmt.Pr")) {
			t.Errorf("suggestion %q is none of the provider's choices %q", l, e.choices)
		}
	}
	second := probe.Lines[1]

	index := func(wantIndex int) func() (bool, string) {
		return func() (bool, string) {
			var got []int
			n.lua(&got, `(function() local i, c = require('codingplan.ghost').index() return { i or 0, c or 0 } end)()`)
			return slices.Equal(got, []int{wantIndex, probe.N}), fmt.Sprint(got)
		}
	}
	n.send("<M-]>") // one suggestion known: asks explicitly, shows the first of the answer
	n.poll(fmt.Sprintf("suggestion 1 of %d", probe.N), index(1))
	n.send("<M-]>")
	n.poll(fmt.Sprintf("suggestion 2 of %d", probe.N), index(2))
	n.poll("the second suggestion's ghost text", func() (bool, string) {
		g := hint.ReplaceAllString(n.ghost(ns), "")
		return "\tfmt.Pr"+g == second, g
	})
	n.send("<Tab>")
	n.poll("the second suggestion accepted", func() (bool, string) {
		l := n.line(6)
		return l == second, l
	})
}
