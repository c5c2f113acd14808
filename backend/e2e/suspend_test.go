package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

// TestSuspendAcrossNodes times issue 11's promise end to end through the account service's
// admin CLI: from just before `codingplan-accounts account suspend` starts to the last of the
// account's websockets closed, on 3 backend nodes. The accounts live in a SQLite database of
// the test's own; the backend's development tokens carry their ids as sub.
func TestSuspendAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3 backend nodes")
	}
	const (
		rounds  = 10 // one account suspended in each
		perNode = 2  // sockets of the suspended account on each node
		prefix  = "suspend-e2e"
	)
	vk := valkeytest.Start(t)
	provider := providertest.New()
	t.Cleanup(provider.Close)

	dir, stateDir, logDir := dirs(t)
	cfgPath := writeConfig(t, dir, fakeModelConfig(vk.Addr(), prefix, provider.URL))

	// The account service's CLI on a SQLite database, without a config file; its default
	// plans are the backend's.
	acc := &accountsProc{t: t, env: append(os.Environ(),
		"CODINGPLAN_ACCOUNTS_DATABASE=sqlite:"+filepath.Join(dir, "accounts", "accounts.db"),
		"CODINGPLAN_ACCOUNTS_CONFIG=")}
	acc.must("migrate")
	create := func(name, plan string) string {
		t.Helper()
		return acc.must("account", "create", "--email", name+"@example.com", "--name", name, "--plan", plan)
	}
	// Every token is minted before any suspension: iat has a resolution of one second, and a
	// token issued in the second of a revocation counts as issued before it.
	victims := make([]string, rounds)
	victimToks := make([]string, rounds)
	for r := range victims {
		victims[r] = create(fmt.Sprintf("victim%d", r), "pro")
		victimToks[r] = mintToken(t, cfgPath, stateDir, victims[r], "pro")
	}
	bystanderTok := mintToken(t, cfgPath, stateDir, create("bystander", "pro"), "pro")
	planID := create("upgrader", "lite")
	planTok := mintToken(t, cfgPath, stateDir, planID, "lite")

	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = newNode(t, fmt.Sprintf("node%d", i), logDir, "--config", cfgPath, "--state-dir", stateDir)
	}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, n.name+" to subscribe", func() bool {
			return n.logsContain(`"msg":"revocations subscribed"`) >= 1
		})
	}
	bystanders := make([]*sock, len(nodes))
	for i, n := range nodes {
		bystanders[i] = dialWS(t, n, bystanderTok)
	}

	// admin starts one CLI command against the nodes' Valkey and returns when it started and a
	// function that waits for it and returns how long it ran.
	admin := func(args ...string) (time.Time, func() time.Duration) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), filepath.Join(binDir, "codingplan-accounts"),
			append(args, "--valkey", vk.Addr(), "--valkey-prefix", prefix)...)
		// A race build sleeps 1 s at exit (GORACE atexit_sleep_ms) after the command's work;
		// without that sleep the run time is the command's own.
		cmd.Env = append(slices.Clip(acc.env), "GORACE=atexit_sleep_ms=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		at := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatalf("codingplan-accounts %v: %v", args, err)
		}
		return at, func() time.Duration {
			t.Helper()
			err := cmd.Wait()
			ran := time.Since(at)
			if err != nil {
				t.Fatalf("codingplan-accounts %v: %v\n%s", args, err, out.String())
			}
			return ran
		}
	}

	var perSocket, perAccount, cliRun []time.Duration
	for r, id := range victims {
		var socks []*sock
		for _, n := range nodes {
			for range perNode {
				socks = append(socks, dialWS(t, n, victimToks[r]))
			}
		}
		ends := make([]<-chan ending, len(socks))
		for i, s := range socks {
			ends[i] = s.awaitEnd()
		}
		at, wait := admin("account", "suspend", id)
		var last time.Duration
		for i, ch := range ends {
			e := <-ch
			if e.err != nil || e.code != wire.CodeUnauthorized || e.message != revokedText || e.closeCode != websocket.ClosePolicyViolation {
				t.Fatalf("account %d socket %d: error %q (%s), close %d, err %v; want unauthorized then close 1008",
					r, i, e.code, e.message, e.closeCode, e.err)
			}
			d := e.closedAt.Sub(at)
			if d > revokeDeadline {
				t.Errorf("account %d socket %d closed %v after the CLI started, over %v", r, i, d, revokeDeadline)
			}
			perSocket = append(perSocket, d)
			last = max(last, d)
		}
		perAccount = append(perAccount, last)
		cliRun = append(cliRun, wait())
	}
	slices.Sort(perSocket)
	slices.Sort(perAccount)
	slices.Sort(cliRun)
	t.Logf("suspend CLI start -> socket closed, %d sockets (%d accounts x %d sockets on 3 nodes): p50 %v p99 %v max %v",
		len(perSocket), rounds, perNode*len(nodes), percentile(perSocket, 50), percentile(perSocket, 99), perSocket[len(perSocket)-1])
	t.Logf("suspend CLI start -> account's last socket closed, %d accounts: p50 %v p99 %v max %v",
		len(perAccount), percentile(perAccount, 50), percentile(perAccount, 99), perAccount[len(perAccount)-1])
	t.Logf("suspend CLI run time, %d runs: p50 %v p99 %v max %v",
		len(cliRun), percentile(cliRun, 50), percentile(cliRun, 99), cliRun[len(cliRun)-1])
	for i, s := range bystanders {
		s.ping(fmt.Sprintf("b%d", i))
	}

	// A plan change through the CLI reaches the account's open sockets as a new hello.
	var planSocks []*sock
	for _, n := range nodes {
		s := dialWS(t, n, planTok)
		if s.hello.Plan == nil || s.hello.Plan.Name != "lite" {
			t.Fatalf("hello plan %+v, want lite", s.hello.Plan)
		}
		planSocks = append(planSocks, s)
	}
	at, wait := admin("account", "set-plan", planID, "max")
	reached := make([]time.Duration, len(planSocks))
	for i, s := range planSocks {
		f := s.next()
		reached[i] = time.Since(at)
		if f.Type != wire.TypeHello || f.Plan == nil || f.Plan.Name != "max" || f.Plan.Concurrency != 10 {
			t.Fatalf("plan socket %d: got %+v, want a hello with plan max/10", i, f)
		}
	}
	ran := wait()
	t.Logf("set-plan CLI start -> new hello on the 3 nodes: %v (the CLI ran %v)", reached, ran.Round(time.Millisecond))
	for i, s := range planSocks {
		s.ping(fmt.Sprintf("pl%d", i))
	}
	for i, s := range bystanders {
		s.ping(fmt.Sprintf("b2-%d", i))
	}
}
