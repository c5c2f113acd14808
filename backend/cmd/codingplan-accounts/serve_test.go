package main

import (
	"bufio"
	"context"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/usage"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
	wire "github.com/codingplan/codingplan/shared"
)

// TestServe starts the service as a process, reaches it and stops it with SIGTERM.
func TestServe(t *testing.T) {
	r := newRunner(t)
	c := exec.Command(binary, "serve", "--listen", "127.0.0.1:0")
	c.Env = r.env
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	t.Cleanup(func() {
		c.Process.Kill()
		<-exited
	})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var base string
	deadline := time.After(20 * time.Second)
	for base == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve ended before its banner:\n%s", stderr.String())
			}
			if m := regexp.MustCompile(`listening on (http://[0-9.:]+)`).FindStringSubmatch(l); m != nil {
				base = m[1]
			}
		case <-deadline:
			t.Fatalf("no banner:\n%s", stderr.String())
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	c.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	if strings.Contains(stderr.String(), "@") {
		t.Errorf("the log holds an email:\n%s", stderr.String())
	}
}

// TestDeleteUsage: account delete --valkey removes the account's usage counts and revokes its
// tokens.
func TestDeleteUsage(t *testing.T) {
	vk := valkeytest.Start(t)
	r := newRunner(t)
	id := strings.TrimSpace(r.must("", "account", "create", "--email", "ada@example.com"))
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{vk.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	for _, user := range []string{id, "someone-else"} {
		if err := usage.New(client, "cptest", nil).Record(ctx, user, wire.Usage{PromptTokens: 3}); err != nil {
			t.Fatal(err)
		}
	}
	r.must("", "account", "delete", id, "--valkey", vk.Addr(), "--valkey-prefix", "cptest")
	keys, err := client.Do(ctx, client.B().Keys().Pattern("cptest:*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	// Left: the other account's counts, and the deletion's denylist key (it expires).
	slices.Sort(keys)
	if want := []string{"cptest:{" + id + "}:revoked", "cptest:{someone-else}:usage:"}; len(keys) != 2 || keys[0] != want[0] || !strings.HasPrefix(keys[1], want[1]) {
		t.Errorf("keys after delete: %q, want %q and a usage key", keys, want)
	}
}
