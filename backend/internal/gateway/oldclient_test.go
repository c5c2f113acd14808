package gateway

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
)

var update = flag.Bool("update", false, "rewrite the golden frames in testdata")

// fakeModel serves model "default" of kind from a fake provider, through the real router.
func fakeModel(t *testing.T, kind string) (*providertest.Server, Router) {
	t.Helper()
	srv := providertest.New()
	t.Cleanup(srv.Close)
	base := srv.URL
	if kind != upstream.KindAnthropic {
		base += "/v1"
	}
	r, err := upstream.New(upstream.Config{Models: []upstream.ModelConfig{{Name: "default", Provider: kind, BaseURL: base, Model: "m"}}},
		upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return srv, Routes(r)
}

// TestOldClientFrames: a client that sends no n gets, byte for byte, the frames it got
// before suggestions had indexes (testdata/old-client.frames was written by the gateway of
// before). The fake provider sends each chunk once the client read the one before, so that
// frame boundaries do not depend on timing.
func TestOldClientFrames(t *testing.T) {
	for _, kind := range []string{upstream.KindOpenAIChat, upstream.KindAnthropic} {
		t.Run(kind, func(t *testing.T) {
			srv, router := fakeModel(t, kind)
			read := make(chan struct{}, 10)
			srv.Script(func(*providertest.Request) providertest.Reply {
				return providertest.Reply{Chunks: []string{"a", " +", " b\n", "\"é\""}, FinishReason: "length",
					Usage: &providertest.Usage{PromptTokens: 12, CompletionTokens: 4},
					Pace:  providertest.After(read)}
			})
			h := newHarness(t, setup{deps: Deps{Router: router}})
			c := h.dial(h.token(nil))
			c.sendRaw(`{"type":"request","id":"c1","op":"completion","model":"default","max_tokens":16,"completion":{"prefix":"x := ","language":"go"}}`)
			var got bytes.Buffer
			for {
				_ = c.c.SetReadDeadline(time.Now().Add(wait))
				mt, data, err := c.c.ReadMessage()
				if err != nil || mt != websocket.TextMessage {
					t.Fatalf("read: %v (type %d)", err, mt)
				}
				got.Write(data)
				got.WriteByte('\n')
				read <- struct{}{}
				if bytes.HasPrefix(data, []byte(`{"type":"done"`)) || bytes.HasPrefix(data, []byte(`{"type":"error"`)) {
					break
				}
			}
			path := filepath.Join("testdata", "old-client.frames")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("frames\n%s\nwant\n%s", got.Bytes(), want)
			}
		})
	}
}
