package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/accounts"
	"github.com/codingplan/codingplan/backend/internal/store"
	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

// TestAccountDatabaseCanary (issue 11, "a dump after canary traffic holds none"): an account
// whose name and email carry a control canary sends prompts, code and snippets carrying content
// canaries through codingplan-backend, the fake provider echoes them back, the routing plane's
// usage counts are imported into the account database of a running codingplan-accounts
// (SQLite), and then neither the store's dump nor the raw database files (-wal and -shm
// included) hold a content canary, while they do hold the control canary (so the search
// works) and the imported counts.
//
// codingplan-accounts does not issue tokens on this branch yet, so the backend's own
// development token names the account as its subject.
func TestAccountDatabaseCanary(t *testing.T) {
	const (
		control   = "CTRLCANARY-5e1b7"
		inPrefix  = "CANARY-PREFIX-93c1a"
		inSuffix  = "CANARY-SUFFIX-0d4e2"
		inSnippet = "CANARY-SNIPPET-b77f0"
		inPath    = "CANARY-PATH-61aa9"
		out       = "CANARY-OUTPUT-2f8c3"
	)
	contents := []string{inPrefix, inSuffix, inSnippet, inPath, out}

	vk := valkeytest.Start(t)
	provider := providertest.New()
	t.Cleanup(provider.Close)
	provider.Script(func(r *providertest.Request) providertest.Reply {
		// Echo the prompt: whatever the backend sends upstream comes back as output.
		return providertest.Reply{Chunks: []string{r.Prompt, " ", out}}
	})

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "accounts", "accounts.db")
	acc := startAccounts(t, dir, "sqlite:"+dbPath)
	email := strings.ToLower(control) + "@example.com"
	id := acc.must("account", "create", "--email", email, "--name", "Ada "+control, "--plan", "pro")

	const prefix = "canary"
	config := fmt.Sprintf(`valkey = %q
valkey_prefix = %q
lease_ttl = "1s"
default_model = "echo"

[plans.pro]
concurrency = 2

[[models]]
name = "echo"
provider = "openai-chat"
base_url = %q
model = "echo"
`, vk.Addr(), prefix, provider.URL+"/v1")
	cfgPath := filepath.Join(dir, "backend.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	token := mintToken(t, cfgPath, stateDir, id, "pro")
	n := newNode(t, "backend", filepath.Join(dir), "--config", cfgPath, "--state-dir", stateDir)

	const requests = 3
	echoed := sendCanaries(t, n, token, requests, &wire.Completion{
		Prefix:   wire.Text("func add(a, b int) int { // " + inPrefix + "\n\t"),
		Suffix:   wire.Text("\n} // " + inSuffix),
		Language: "go",
		Path:     "pkg/" + inPath + ".go",
		Snippets: []wire.Snippet{{Path: "other.go", Text: wire.Text("// " + inSnippet)}},
	})
	if !strings.Contains(echoed, out) || !strings.Contains(echoed, inPrefix) {
		t.Fatalf("the provider's echo did not come back: %q", echoed)
	}

	// The import, as codingplan-accounts serve runs it, into the live database.
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{vk.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	st, err := store.OpenSQLite(t.Context(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := accounts.ImportUsage(t.Context(), st, client, prefix, 2); err != nil {
		t.Fatalf("ImportUsage: %v", err)
	}
	u, err := st.Usage(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(u) != 1 || u[0].Requests != requests || u[0].Tokens <= 0 {
		t.Errorf("imported usage %+v, want one day with %d requests and some tokens", u, requests)
	}
	// The service itself answers for the account with the imported counts.
	if got := acc.must("account", "export", id); !strings.Contains(got, `"requests": `+strconv.Itoa(requests)) {
		t.Errorf("account export lacks the imported usage:\n%s", got)
	}

	rows, err := st.Dump(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&dump, "%s %v\n", r.Table, r.Values)
	}
	raw := readAll(t, dbPath, dbPath+"-wal", dbPath+"-shm")
	if !strings.Contains(dump.String(), control) || !bytes.Contains(raw, []byte(control)) {
		t.Fatalf("the control canary %q is missing from the dump (%d rows) or the raw files (%d bytes): the search does not work",
			control, len(rows), len(raw))
	}
	for _, c := range contents {
		if strings.Contains(dump.String(), c) {
			t.Errorf("the store's dump holds the content canary %q", c)
		}
		if bytes.Contains(raw, []byte(c)) {
			t.Errorf("the database files hold the content canary %q", c)
		}
		if got := acc.logs(); strings.Contains(got, c) {
			t.Errorf("codingplan-accounts' log holds the content canary %q", c)
		}
	}
}

// sendCanaries sends the completion request count times on one websocket and returns the text
// streamed back.
func sendCanaries(t *testing.T, n *node, token string, count int, c *wire.Completion) string {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.DialContext(t.Context(), n.wsURL(), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	var text strings.Builder
	for i, tries := 0, 0; i < count; tries++ {
		id := fmt.Sprintf("c%d.%d", i, tries)
		b, _ := wire.Marshal(wire.ClientFrame{Type: wire.TypeRequest, ID: id, Op: wire.OpCompletion, Completion: c})
		if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		var retry time.Duration
		for done := false; !done; {
			_, data, err := conn.ReadMessage()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			f, err := wire.DecodeServer(data)
			if err != nil {
				t.Fatal(err)
			}
			if f.ID != id {
				continue // hello
			}
			switch f.Type {
			case wire.TypeDelta:
				text.WriteString(string(f.Text))
			case wire.TypeDone:
				done = true
				i++
			case wire.TypeQueued:
			case wire.TypeError:
				// A new Valkey: the backend's lease store waits out its recovery window
				// (lease_ttl + 1s) once, and says when to retry; a refused request is not
				// counted.
				if f.RetryAfterMS <= 0 || tries > 5 {
					t.Fatalf("request %s: got %+v", id, f)
				}
				retry, done = time.Duration(f.RetryAfterMS)*time.Millisecond, true
			default:
				t.Fatalf("request %s: got %+v", id, f)
			}
		}
		if retry > 0 {
			select {
			case <-time.After(retry):
			case <-t.Context().Done():
				return text.String()
			}
		}
	}
	return text.String()
}

func readAll(t *testing.T, paths ...string) []byte {
	t.Helper()
	var all []byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// accountsProc is a running codingplan-accounts serve on a database of the test's own.
type accountsProc struct {
	t    *testing.T
	env  []string
	exit chan struct{} // closed when the process has exited

	mu  sync.Mutex
	log bytes.Buffer // its stderr
}

func startAccounts(t *testing.T, dir, database string) *accountsProc {
	t.Helper()
	bin := filepath.Join(binDir, "codingplan-accounts")
	a := &accountsProc{t: t, exit: make(chan struct{}),
		env: append(os.Environ(), "CODINGPLAN_ACCOUNTS_DATABASE="+database, "CODINGPLAN_ACCOUNTS_CONFIG=")}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:"+strconv.Itoa(valkeytest.FreePort(t)))
	cmd.Env = a.env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start codingplan-accounts: %v", err)
	}
	listening := make(chan struct{})
	go func() { // owned by the cleanup below, through a.exit
		defer close(a.exit)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			a.mu.Lock()
			a.log.Write(append(sc.Bytes(), '\n'))
			a.mu.Unlock()
			if !seen && bytes.Contains(sc.Bytes(), []byte(`"msg":"listening"`)) {
				seen = true
				close(listening)
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { cancel(); <-a.exit })
	select {
	case <-listening:
	case <-a.exit:
		t.Fatalf("codingplan-accounts exited before listening:\n%s", a.logs())
	case <-time.After(30 * time.Second):
		t.Fatal("codingplan-accounts did not listen within 30s")
	}
	return a
}

// logs returns what the service logged so far.
func (a *accountsProc) logs() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// must runs an admin command on the service's database and returns its trimmed stdout.
func (a *accountsProc) must(args ...string) string {
	a.t.Helper()
	cmd := exec.CommandContext(a.t.Context(), filepath.Join(binDir, "codingplan-accounts"), args...)
	cmd.Env = a.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		a.t.Fatalf("codingplan-accounts %v: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}
