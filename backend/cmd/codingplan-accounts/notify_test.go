package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/codingplan/codingplan/backend/internal/revoke"
	"github.com/codingplan/codingplan/backend/internal/valkeytest"
)

// watch is a revoke.Handler that passes events on and says when it is subscribed.
type watch struct {
	events     chan revoke.Event
	subscribed chan struct{}
}

func (w *watch) Handle(_ context.Context, e revoke.Event) { w.events <- e }
func (w *watch) Resync(context.Context) {
	select {
	case w.subscribed <- struct{}{}:
	default:
	}
}

func (w *watch) next(t *testing.T) revoke.Event {
	t.Helper()
	select {
	case e := <-w.events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event on the revocation channel")
		return revoke.Event{}
	}
}

// TestRevocationPublished: the admin commands publish to the routing plane's Valkey what a
// node needs: after account suspend, the account's denylist key exists with revocation_ttl
// and a subscriber got the event; key revoke and signin revoke name the sid; set-plan sends
// the plan; resume sends nothing.
func TestRevocationPublished(t *testing.T) {
	vk := valkeytest.Start(t)
	prefix := "cprev" + strings.ReplaceAll(t.Name(), "/", "_")
	r := newRunner(t)
	r.env = append(r.env, "CODINGPLAN_ACCOUNTS_VALKEY="+vk.Addr(), "CODINGPLAN_ACCOUNTS_VALKEY_PREFIX="+prefix)
	id := strings.TrimSpace(r.must("correct horse battery\n", "account", "create", "--email", "ada@example.com", "--plan", "pro", "--password-stdin"))

	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{vk.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	w := &watch{events: make(chan revoke.Event, 16), subscribed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); revoke.NewWatcher(client, prefix, w, nil).Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-w.subscribed:
	case <-time.After(10 * time.Second):
		t.Fatal("not subscribed")
	}

	before := time.Now().UnixMilli()
	r.must("", "account", "set-plan", id, "max")
	if e := w.next(t); e.Kind != revoke.KindPlan || e.Sub != id || e.Plan != "max" || e.At < before {
		t.Errorf("set-plan published %+v", e)
	}
	r.must("", "account", "suspend", id)
	if e := w.next(t); e.Kind != revoke.KindRevoke || e.Sub != id || e.SID != "" {
		t.Errorf("suspend published %+v", e)
	}
	key := prefix + ":{" + id + "}:revoked"
	ttl, err := client.Do(ctx, client.B().Pttl().Key(key).Build()).AsInt64()
	if err != nil || ttl <= int64(19*time.Minute/time.Millisecond) || ttl > int64(20*time.Minute/time.Millisecond) {
		t.Errorf("PTTL %s = %d (%v), want about 20m", key, ttl, err)
	}
	r.must("", "account", "resume", id)

	k := strings.TrimSpace(r.must("", "key", "create", id, "--name", "ci"))
	if !strings.HasPrefix(k, "cpk_") {
		t.Fatalf("key create: %q", k)
	}
	list := r.must("", "key", "list", id)
	kid := strings.Fields(strings.Split(list, "\n")[1])[0]
	r.must("", "key", "revoke", id, kid)
	if e := w.next(t); e.Kind != revoke.KindRevoke || e.Sub != id || e.SID != kid {
		t.Errorf("key revoke published %+v (after resume: nothing), want sid %s", e, kid)
	}
	if n, err := client.Do(ctx, client.B().Exists().Key(prefix+":{"+id+"}:revoked:"+kid).Build()).AsInt64(); err != nil || n != 1 {
		t.Errorf("sid denylist key: %d %v", n, err)
	}

	// The server's API: revoking a key as the signed-in user publishes it too.
	base := startServe(t, r)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	if code, body := post(t, browser, base+"/v1/session", map[string]string{"email": "ada@example.com", "password": "correct horse battery"}); code != 200 {
		t.Fatalf("sign-in: %d %v", code, body)
	}
	code, created := post(t, browser, base+"/v1/keys", map[string]string{"name": "laptop"})
	kid2, _ := created["id"].(string)
	if code != 201 || kid2 == "" {
		t.Fatalf("POST /v1/keys: %d %v", code, created)
	}
	req, _ := http.NewRequest("DELETE", base+"/v1/keys/"+kid2, nil)
	resp, err := browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE /v1/keys: %d", resp.StatusCode)
	}
	if e := w.next(t); e.Kind != revoke.KindRevoke || e.Sub != id || e.SID != kid2 {
		t.Errorf("DELETE /v1/keys published %+v, want sid %s", e, kid2)
	}

	_, errOut, code := r.run("", "account", "delete", id)
	if code != 0 {
		t.Fatalf("delete: %d %s", code, errOut)
	}
	if e := w.next(t); e.Kind != revoke.KindRevoke || e.Sub != id {
		t.Errorf("delete published %+v", e)
	}

	// Without Valkey the commands say so.
	r2 := newRunner(t)
	id2 := strings.TrimSpace(r2.must("", "account", "create", "--email", "bob@example.com", "--plan", "pro"))
	if _, errOut, code := r2.run("", "account", "suspend", id2); code != 0 || !strings.Contains(errOut, "only when the tokens expire") {
		t.Errorf("suspend without valkey: %d %q", code, errOut)
	}
	select {
	case e := <-w.events:
		t.Errorf("unexpected event %+v", e)
	default:
	}
}
