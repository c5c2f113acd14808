package e2e

// The device sign-in, end to end: :Codingplan signin shows the code in a float and opens the
// page with vim.ui.open (replaced here by one that records the URL, since there is no browser);
// the test approves the code through the account service's API as the signed-in user would on
// the device page; the server then connects to a backend that trusts the account service, keeps
// the sign-in in $XDG_CONFIG_HOME/codingplan/signin.json (0600), and :Codingplan signout
// revokes it and deletes the file. scripts/e2e.sh sets, besides the variables of e2e_test.go:
//
//	CODINGPLAN_E2E_ACCOUNTS_URL         the account service
//	CODINGPLAN_E2E_ACCOUNTS_EMAIL       an account on it
//	CODINGPLAN_E2E_ACCOUNTS_PASSWORD    and its password
//	CODINGPLAN_E2E_SIGNIN_BACKEND_URL   a backend whose jwks is the account service's

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// approve approves a device sign-in's user code through the account service's API:
// POST /v1/session, then POST /v1/device/approve.
func approve(t *testing.T, accounts, email, password, userCode string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	for _, step := range []struct {
		path string
		body map[string]string
	}{
		{"/v1/session", map[string]string{"email": email, "password": password}},
		{"/v1/device/approve", map[string]string{"user_code": userCode, "action": "approve"}},
	} {
		data, _ := json.Marshal(step.body)
		resp, err := hc.Post(accounts+step.path, "application/json", bytes.NewReader(data))
		if err != nil {
			t.Fatalf("POST %s: %v", step.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: HTTP %d", step.path, resp.StatusCode)
		}
	}
}

func TestNeovimSignIn(t *testing.T) {
	e := loadEnv(t)
	accounts := os.Getenv("CODINGPLAN_E2E_ACCOUNTS_URL")
	email, password := os.Getenv("CODINGPLAN_E2E_ACCOUNTS_EMAIL"), os.Getenv("CODINGPLAN_E2E_ACCOUNTS_PASSWORD")
	backend := os.Getenv("CODINGPLAN_E2E_SIGNIN_BACKEND_URL")
	if accounts == "" || backend == "" {
		if os.Getenv("CODINGPLAN_REQUIRE_E2E") == "1" {
			t.Fatal("CODINGPLAN_E2E_ACCOUNTS_URL and CODINGPLAN_E2E_SIGNIN_BACKEND_URL not set: run make test-e2e")
		}
		t.Skip("no account service: run make test-e2e")
	}
	for _, bin := range e.nvims {
		v := version(t, bin)
		t.Run("nvim-"+v, func(t *testing.T) {
			ws := t.TempDir()
			if err := os.WriteFile(filepath.Join(ws, "main.go"), []byte(mainGo), 0o644); err != nil {
				t.Fatal(err)
			}
			initLua := filepath.Join(t.TempDir(), "init.lua")
			cfg := fmt.Sprintf(`
vim.opt.rtp:prepend(%q)
vim.cmd('runtime plugin/codingplan.lua')
-- No browser here: record what the plugin opens.
_G.e2e_opened = {}
vim.ui.open = function(uri)
  table.insert(_G.e2e_opened, uri)
  return { wait = function() end }, nil
end
require('codingplan').setup({ server_path = %q, settings = { backendUrl = %q, accountsUrl = %q } })
`, pluginDir(t), e.lsp, backend, accounts)
			if err := os.WriteFile(initLua, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			n := start(t, bin, ws, initLua, "main.go", nil)
			statusline := func(want string) func() (bool, string) {
				return func() (bool, string) {
					var s string
					n.lua(&s, `require('codingplan').statusline()`)
					return s == want, s
				}
			}
			home := strings.TrimSuffix(n.sock, "nvim.sock")
			file := filepath.Join(home, "config", "codingplan", "signin.json")

			n.poll("signed out", statusline("codingplan: signed out"))
			n.send(":Codingplan signin<CR>")
			var code string
			n.poll("the code in a float", func() (bool, string) {
				n.lua(&code, `(require('codingplan.signin').last or {}).code or ''`)
				return code != "", code
			})
			var opened, float string
			n.lua(&opened, `table.concat(_G.e2e_opened, ' ')`)
			if !strings.Contains(opened, "/device?user_code=") {
				t.Errorf("vim.ui.open got %q, want the device page with the code", opened)
			}
			n.lua(&float, `(function() for _, w in ipairs(vim.api.nvim_list_wins()) do if vim.api.nvim_win_get_config(w).relative ~= '' then return table.concat(vim.api.nvim_buf_get_lines(vim.api.nvim_win_get_buf(w), 0, -1, false), ' ') end end return '' end)()`)
			if !strings.Contains(float, code) {
				t.Errorf("the float shows %q, want the code %s", float, code)
			}
			approve(t, accounts, email, password, code)
			d := n.poll("ready", statusline("codingplan: ready"))
			t.Logf("ready %v after the approval (the server polls every 5 s)", d.Round(time.Millisecond))
			info, err := os.Stat(file)
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Errorf("the sign-in file: %v, %v; want mode 600", info, err)
			}

			n.send(":Codingplan signout<CR>")
			n.poll("signed out", statusline("codingplan: signed out"))
			n.poll("the file deleted", func() (bool, string) {
				_, err := os.Stat(file)
				return os.IsNotExist(err), fmt.Sprint(err)
			})
		})
	}
}
