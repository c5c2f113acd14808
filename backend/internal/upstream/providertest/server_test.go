package providertest

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden streams from what the server writes")

// TestGoldens pins what the server writes for each API, byte for byte: the shapes are the
// real APIs', so a change here must be checked against their documentation.
func TestGoldens(t *testing.T) {
	chat := `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"s"},{"role":"user","content":"hello"}]}`
	completions := `{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"prompt":"def f(","suffix":"\n"}`
	anthropic := `{"model":"claude-test","stream":true,"max_tokens":16,"system":"s","messages":[{"role":"user","content":"hello"}]}`
	tests := []struct{ name, path, body string }{
		{"openai-chat", "/v1/chat/completions", chat},
		{"openai-chat-no-usage", "/v1/chat/completions", strings.Replace(chat, `"stream_options":{"include_usage":true},`, "", 1)},
		{"openai-completions", "/v1/completions", completions},
		{"anthropic", "/v1/messages", anthropic},
		{"openai-chat-429", "/v1/chat/completions", strings.Replace(chat, "gpt-test", "error-429", 1)},
		{"openai-chat-stream-error", "/v1/chat/completions", strings.Replace(chat, "gpt-test", "stream-error", 1)},
		{"anthropic-529", "/v1/messages", strings.Replace(anthropic, "claude-test", "error-529", 1)},
		{"anthropic-stream-error", "/v1/messages", strings.Replace(anthropic, "claude-test", "stream-error", 1)},
		// "n": 3 asks for three choices, streamed interleaved, each chunk naming its index.
		{"openai-chat-n3", "/v1/chat/completions", strings.Replace(chat, `"stream":true`, `"stream":true,"n":3`, 1)},
		{"openai-completions-n3", "/v1/completions", strings.Replace(completions, `"stream":true`, `"stream":true,"n":3`, 1)},
		{"openai-chat-n0", "/v1/chat/completions", strings.Replace(chat, `"stream":true`, `"stream":true,"n":0`, 1)},
	}
	srv := New()
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			got = append([]byte(resp.Status+"\n"+resp.Header.Get("Content-Type")+"\n\n"), got...)
			path := filepath.Join("testdata", tt.name+".txt")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestClientGone: a client that leaves is reported as such, and Wait sees it.
func TestClientGone(t *testing.T) {
	srv := New()
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"hang","stream":true,"messages":[{"role":"user","content":"x"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if _, err := srv.Wait(wctx, Started(1)); err != nil {
		t.Fatal(err)
	}
	cancel()
	ev, err := srv.Wait(wctx, Ended(1))
	if err != nil || ev.Reason != ReasonClientGone {
		t.Fatalf("got %+v, %v; want the end with %s", ev, err, ReasonClientGone)
	}
}

func TestSplit(t *testing.T) {
	got := Split("aé😀b", 2)
	if strings.Join(got, "|") != "a|é|😀|b" {
		t.Errorf("got %q", got)
	}
}

func TestSplitEven(t *testing.T) {
	for _, tt := range []struct {
		s    string
		n    int
		want string
	}{
		{"abcdefgh", 4, "ab|cd|ef|gh"},
		{"abcdefghij", 4, "abc|def|gh|ij"},
		{"aé😀b", 3, "aé|😀|b"},
		{"ab", 5, "a|b"},
		{"", 3, ""},
	} {
		if got := strings.Join(SplitEven(tt.s, tt.n), "|"); got != tt.want {
			t.Errorf("SplitEven(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestChoices(t *testing.T) {
	r := Reply{Chunks: []string{"a", "b"}, Alternatives: [][]string{{"c"}}}
	tests := []struct {
		n    int
		want [][]string
	}{
		{0, [][]string{{"a", "b"}}},
		{1, [][]string{{"a", "b"}}},
		{2, [][]string{{"a", "b"}, {"c"}}},
		{3, [][]string{{"a", "b"}, {"c"}, {"/*2*/", "a", "b"}}},
	}
	for _, tt := range tests {
		if got := r.Choices(tt.n); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Choices(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
