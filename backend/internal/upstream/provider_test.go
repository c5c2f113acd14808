package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/codingplan/codingplan/backend/internal/upstream/providertest"
	wire "github.com/codingplan/codingplan/shared"
)

// TestStreamChunkByChunk checks each provider passes every chunk on before the fake sends
// the next one: the fake's Pace waits for the sink to have seen the previous chunk.
func TestStreamChunkByChunk(t *testing.T) {
	want := []string{"alpha", " beta", "\n\tgamma"}
	for _, kind := range httpKinds {
		t.Run(kind, func(t *testing.T) {
			srv := newServer(t)
			seen := make([]chan struct{}, len(want))
			for i := range seen {
				seen[i] = make(chan struct{})
			}
			var got *providertest.Request
			srv.Script(func(r *providertest.Request) providertest.Reply {
				got = r
				return providertest.Reply{Chunks: want, Pace: func(ctx context.Context, i int) error {
					if i == 0 {
						return nil
					}
					select {
					case <-seen[i-1]:
						return nil
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(10 * time.Second):
						return errors.New("the sink never saw the previous chunk and a flush")
					}
				}}
			})
			// Each chunk is sent only once the sink got the one before and then a flush: the
			// provider flushes before it waits for more (see Sink), so a sink that holds
			// output back until a flush still streams.
			var closed int
			c := &collector{onFlush: func(n int) {
				for ; closed < n; closed++ {
					close(seen[closed])
				}
			}}
			res, err := newProvider(t, srv, kind, "m", nil).Stream(context.Background(), completion(), c.sink)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.chunks, want) {
				t.Errorf("chunks %q, want %q", c.chunks, want)
			}
			wantUsage := wire.Usage{PromptTokens: (len(got.System) + len(got.Prompt) + len(got.Suffix) + 3) / 4, CompletionTokens: len(want)}
			if res.Usage != wantUsage || res.FinishReason != wire.FinishStop {
				t.Errorf("result %+v, want usage %+v and finish stop", res, wantUsage)
			}
			if r := waitEnd(t, srv, 1); r != providertest.ReasonDone {
				t.Errorf("provider saw the request end with %q", r)
			}
		})
	}
}

func TestFinishAndUsage(t *testing.T) {
	tests := []struct {
		name   string
		reply  providertest.Reply
		kinds  []string
		finish string
		usage  func(r *providertest.Request) wire.Usage
	}{
		{"length", providertest.Reply{Chunks: []string{"a"}, FinishReason: "length", Usage: &providertest.Usage{PromptTokens: 11, CompletionTokens: 7}},
			httpKinds, wire.FinishLength, func(*providertest.Request) wire.Usage { return wire.Usage{PromptTokens: 11, CompletionTokens: 7} }},
		{"stop", providertest.Reply{Chunks: []string{"a"}, FinishReason: "stop", Usage: &providertest.Usage{PromptTokens: 3, CompletionTokens: 1}},
			httpKinds, wire.FinishStop, func(*providertest.Request) wire.Usage { return wire.Usage{PromptTokens: 3, CompletionTokens: 1} }},
		{"content filter is a stop", providertest.Reply{Chunks: []string{"a"}, FinishReason: "content_filter"},
			[]string{KindOpenAIChat}, wire.FinishStop, nil},
		// Without usage data the provider estimates about 4 bytes per token.
		{"estimated", providertest.Reply{Chunks: []string{"abcd", "efgh"}, NoUsage: true},
			[]string{KindOpenAIChat, KindOpenAICompletions}, wire.FinishStop, nil},
	}
	for _, tt := range tests {
		for _, kind := range tt.kinds {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				srv := newServer(t)
				var got *providertest.Request
				srv.Script(func(r *providertest.Request) providertest.Reply { got = r; return tt.reply })
				res, err := newProvider(t, srv, kind, "m", nil).Stream(context.Background(), completion(), (&collector{}).sink)
				if err != nil {
					t.Fatal(err)
				}
				if res.FinishReason != tt.finish {
					t.Errorf("finish %q, want %q", res.FinishReason, tt.finish)
				}
				if tt.usage != nil {
					if want := tt.usage(got); res.Usage != want {
						t.Errorf("usage %+v, want %+v", res.Usage, want)
					}
				} else if tt.reply.NoUsage {
					// The estimate counts the prompt text only, not the JSON around it.
					c := completion().Completion
					if res.Usage.CompletionTokens != 2 || res.Usage.PromptTokens < len(c.Prefix+c.Suffix)/4 || res.Usage.PromptTokens > (len(got.Body)+3)/4 {
						t.Errorf("estimated usage %+v for a %d-byte body", res.Usage, len(got.Body))
					}
				}
			})
		}
	}
}

// TestRequests checks what each provider sends: model, key, headers, limits, stop sequences
// and prompt.
func TestRequests(t *testing.T) {
	req := completion()
	req.Stop = []wire.Text{"\n\n", "}", "END"}
	req.MaxTokens = 77
	edit := func(m *ModelConfig) { m.Stop = []string{"}", "<|end|>", "STOP2", "STOP3"} }
	for _, kind := range httpKinds {
		t.Run(kind, func(t *testing.T) {
			srv := newServer(t)
			var got *providertest.Request
			srv.Script(func(r *providertest.Request) providertest.Reply { got = r; return providertest.Reply{} })
			if _, err := newProvider(t, srv, kind, "model-x", edit).Stream(context.Background(), req, (&collector{}).sink); err != nil {
				t.Fatal(err)
			}
			if got.Model != "model-x" || got.APIKey != testKey || got.MaxTokens != 77 || !got.Stream {
				t.Errorf("model %q key %q max_tokens %d stream %v", got.Model, got.APIKey, got.MaxTokens, got.Stream)
			}
			wantStop := []string{"\n\n", "}", "END", "<|end|>"} // OpenAI takes 4
			if kind == KindAnthropic {
				wantStop = []string{"}", "END", "<|end|>", "STOP2", "STOP3"} // no blank-only sequences
				if v := got.Header.Get("Anthropic-Version"); v != AnthropicVersion {
					t.Errorf("anthropic-version %q", v)
				}
			} else if !got.IncludeUsage {
				t.Error("stream_options.include_usage not set")
			}
			if !reflect.DeepEqual(got.Stop, wantStop) {
				t.Errorf("stop %q, want %q", got.Stop, wantStop)
			}
			c := req.Completion
			switch kind {
			case KindOpenAICompletions:
				if got.Prompt != string(c.Prefix) || got.Suffix != string(c.Suffix) {
					t.Errorf("prompt %q suffix %q", got.Prompt, got.Suffix)
				}
			default:
				want := string(c.Prefix) + cursorMarker + string(c.Suffix)
				if !strings.Contains(got.Prompt, want) || !strings.Contains(got.System, "<CURSOR>") {
					t.Errorf("user prompt %q lacks %q, or system %q lacks the marker", got.Prompt, want, got.System)
				}
			}
		})
	}
}

func TestFIMTemplate(t *testing.T) {
	srv := newServer(t)
	var got *providertest.Request
	srv.Script(func(r *providertest.Request) providertest.Reply { got = r; return providertest.Reply{} })
	p := newProvider(t, srv, KindOpenAICompletions, "m", func(m *ModelConfig) {
		m.FIMTemplate = "<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>{unknown}"
	})
	req := completion()
	if _, err := p.Stream(context.Background(), req, (&collector{}).sink); err != nil {
		t.Fatal(err)
	}
	want := "<fim_prefix>" + string(req.Completion.Prefix) + "<fim_suffix>" + string(req.Completion.Suffix) + "<fim_middle>{unknown}"
	if got.Prompt != want || got.Suffix != "" {
		t.Errorf("prompt %q suffix %q, want %q and none", got.Prompt, got.Suffix, want)
	}
}

// TestContentRoundTrip sends text that JSON must escape and gets it back from the echo model.
func TestContentRoundTrip(t *testing.T) {
	prefix := "a \"quoted\" \\ back\\slash\n\ttab \u2028 é 😀 <tag>&amp; \x01 " + canary
	srv := newServer(t)
	p := newProvider(t, srv, KindOpenAICompletions, "echo", nil)
	c := &collector{}
	req := &Request{Op: wire.OpCompletion, Completion: &wire.Completion{Prefix: wire.Text(prefix)}}
	if _, err := p.Stream(context.Background(), req, c.sink); err != nil {
		t.Fatal(err)
	}
	if got := c.text(); got != prefix {
		t.Errorf("echo %q, want %q", got, prefix)
	}
}

func TestChatStripsFence(t *testing.T) {
	srv := newServer(t)
	srv.Script(func(*providertest.Request) providertest.Reply {
		return providertest.Reply{Chunks: []string{"```", "go\nreturn", " a + b\n", "``", "`\nThis adds."}}
	})
	c := &collector{}
	if _, err := newProvider(t, srv, KindOpenAIChat, "m", nil).Stream(context.Background(), completion(), c.sink); err != nil {
		t.Fatal(err)
	}
	if got := c.text(); got != "return a + b" {
		t.Errorf("got %q", got)
	}
}

func TestEditPrompt(t *testing.T) {
	req := &Request{Op: wire.OpEdit, Edit: &wire.Edit{Instruction: "add a doc comment " + canary, Selection: "func f() {}",
		Prefix: "package p\n", Diagnostics: []wire.Text{"f is unused"}, Language: "go", Path: "p.go"}}
	for _, kind := range httpKinds {
		t.Run(kind, func(t *testing.T) {
			srv := newServer(t)
			var got *providertest.Request
			srv.Script(func(r *providertest.Request) providertest.Reply { got = r; return providertest.Reply{} })
			if _, err := newProvider(t, srv, kind, "m", nil).Stream(context.Background(), req, (&collector{}).sink); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{canary, "func f() {}", "f is unused"} {
				if !strings.Contains(got.Prompt, want) {
					t.Errorf("prompt %q lacks %q", got.Prompt, want)
				}
			}
		})
	}
}

// TestCancelMidStream checks that cancelling the stream's context ends the request at the
// provider, and comes back as the context's error; for a request of three suggestions, it
// ends every request made for it (three for Anthropic) before Stream returns.
func TestCancelMidStream(t *testing.T) {
	for _, n := range []int{1, 3} {
		for _, kind := range httpKinds {
			t.Run(fmt.Sprintf("%s/n=%d", kind, n), func(t *testing.T) {
				srv := newServer(t)
				srv.Script(func(*providertest.Request) providertest.Reply {
					return providertest.Reply{Chunks: []string{"a", "b"}, Pace: blockUntilGone}
				})
				calls := 1
				if kind == KindAnthropic {
					calls = n
				}
				ctx, cancel := context.WithCancel(waitCtx(t))
				defer cancel()
				// Cancel once some output arrived and every request reached the provider.
				c := &collector{onFlush: func(got int) {
					if got > 0 {
						waitStarts(t, srv, calls)
						cancel()
					}
				}}
				req := completion()
				req.N = n
				_, err := newProvider(t, srv, kind, "m", nil).Stream(ctx, req, c.sink)
				if !errors.Is(err, context.Canceled) || errors.Is(err, ErrFailed) || errors.Is(err, ErrUnavailable) {
					t.Fatalf("got %v, want context.Canceled only", err)
				}
				if got := starts(srv); got != calls {
					t.Fatalf("%d requests, want %d", got, calls)
				}
				for id := range int64(calls) {
					if r := waitEnd(t, srv, id+1); r != providertest.ReasonClientGone {
						t.Errorf("provider saw request %d end with %q, want %q", id+1, r, providertest.ReasonClientGone)
					}
				}
			})
		}
	}
}

// TestSinkError ends the stream with the sink's own error.
func TestSinkError(t *testing.T) {
	boom := errors.New("client too slow")
	for _, kind := range httpKinds {
		t.Run(kind, func(t *testing.T) {
			srv := newServer(t)
			_, err := newProvider(t, srv, kind, "m", nil).Stream(context.Background(), completion(), func(int, []byte) error { return boom })
			if !errors.Is(err, boom) || errors.Is(err, ErrFailed) {
				t.Fatalf("got %v, want the sink's error", err)
			}
			waitEnd(t, srv, 1)
		})
	}
}

func TestErrorClasses(t *testing.T) {
	tests := []struct {
		model  string
		class  error
		detail string // in the error message
	}{
		{"error-429", ErrUnavailable, "status 429"},
		{"error-502", ErrUnavailable, "status 502"},
		{"error-503", ErrUnavailable, "status 503"},
		{"error-529", ErrUnavailable, "status 529"},
		{"error-400", ErrFailed, "type: invalid_request_error"},
		{"error-401", ErrFailed, "status 401"},
		{"error-404", ErrFailed, "status 404"},
		{"error-500", ErrFailed, "status 500"},
		{"malformed", ErrFailed, "malformed"},
		{"stream-error", ErrFailed, "error event"},
		{"cut", ErrFailed, "before its end marker"},
		{"abort", ErrFailed, "reading the stream"},
		{"huge-line", ErrFailed, "line longer than"},
	}
	for _, kind := range httpKinds {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.model, func(t *testing.T) {
				srv := newServer(t)
				_, err := newProvider(t, srv, kind, tt.model, nil).Stream(context.Background(), completion(), (&collector{}).sink)
				checkError(t, err, tt.class, tt.detail)
				if tt.model == "error-429" && kind != KindAnthropic && !strings.Contains(err.Error(), "code: rate_limit_exceeded") {
					t.Errorf("error %q lacks the provider's code", err)
				}
			})
		}
	}
}

// checkError checks err's class and detail, and that it holds no content.
func checkError(t *testing.T, err error, class error, detail string) {
	t.Helper()
	other := ErrFailed
	if class == ErrFailed {
		other = ErrUnavailable
	}
	if !errors.Is(err, class) || errors.Is(err, other) {
		t.Fatalf("got %v, want %v", err, class)
	}
	if !strings.Contains(err.Error(), detail) {
		t.Errorf("error %q lacks %q", err, detail)
	}
	if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "Invalid request near") {
		t.Errorf("error %q holds content or the provider's message", err)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()
	tests := []struct{ name, url string }{
		{"connection refused", refused},
		{"no such host", "http://codingplan-test.invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewOpenAIChat(ModelConfig{Name: "m", Provider: KindOpenAIChat, BaseURL: tt.url,
				Timeouts: Timeouts{Connect: 2 * time.Second, FirstToken: 3 * time.Second}}, testEnv(t))
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Stream(context.Background(), completion(), (&collector{}).sink)
			checkError(t, err, ErrUnavailable, "request")
		})
	}
}

func TestTimeouts(t *testing.T) {
	const short = 150 * time.Millisecond
	slowChunks := providertest.Reply{Chunks: strings.Split(strings.Repeat("a", 200), ""), Delay: 20 * time.Millisecond}
	tests := []struct {
		name     string
		model    string
		reply    *providertest.Reply
		timeouts Timeouts
		class    error
		cause    error
		output   bool // some output reached the sink first
	}{
		{"first token, headers sent", "hang", nil, Timeouts{FirstToken: short}, ErrUnavailable, errFirstToken, false},
		{"first token, no headers", "hang-headers", nil, Timeouts{FirstToken: short}, ErrUnavailable, errFirstToken, false},
		{"idle gap", "m", &providertest.Reply{Chunks: []string{"a", "b"}, Pace: blockUntilGone},
			Timeouts{Idle: short}, ErrFailed, errIdle, true},
		{"total before first token", "hang", nil, Timeouts{Total: short}, ErrUnavailable, errTotal, false},
		{"total after first token", "m", &slowChunks, Timeouts{Total: 5 * short, Idle: time.Second}, ErrFailed, errTotal, true},
	}
	for _, kind := range []string{KindOpenAIChat, KindAnthropic} {
		for _, tt := range tests {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				srv := newServer(t)
				if tt.reply != nil {
					srv.Script(func(*providertest.Request) providertest.Reply { return *tt.reply })
				}
				p := newProvider(t, srv, kind, tt.model, func(m *ModelConfig) { m.Timeouts = tt.timeouts })
				c := &collector{}
				_, err := p.Stream(context.Background(), completion(), c.sink)
				if !errors.Is(err, tt.class) || !errors.Is(err, tt.cause) {
					t.Fatalf("got %v, want %v and %v", err, tt.class, tt.cause)
				}
				if got := c.text() != ""; got != tt.output {
					t.Errorf("output %q, want some: %v", c.text(), tt.output)
				}
				if r := waitEnd(t, srv, 1); r != providertest.ReasonClientGone {
					t.Errorf("provider saw the request end with %q", r)
				}
			})
		}
	}
}

// TestLongLine: a line over bufio.Scanner's 64 KiB passes whole.
func TestLongLine(t *testing.T) {
	for _, kind := range httpKinds {
		t.Run(kind, func(t *testing.T) {
			srv := newServer(t)
			c := &collector{}
			if _, err := newProvider(t, srv, kind, "long-line", nil).Stream(context.Background(), completion(), c.sink); err != nil {
				t.Fatal(err)
			}
			if got := c.text(); got != strings.Repeat("x", 100<<10) {
				t.Errorf("got %d bytes", len(got))
			}
		})
	}
}

// TestCutNeverClean: output that reached the sink does not make a cut stream a success.
func TestCutNeverClean(t *testing.T) {
	for _, kind := range httpKinds {
		for _, model := range []string{"cut", "abort"} {
			t.Run(kind+"/"+model, func(t *testing.T) {
				srv := newServer(t)
				c := &collector{}
				res, err := newProvider(t, srv, kind, model, nil).Stream(context.Background(), completion(), c.sink)
				if !errors.Is(err, ErrFailed) || res != (Result{}) {
					t.Fatalf("got %+v, %v; want ErrFailed", res, err)
				}
				if want := strings.Join(providertest.DefaultChunks[:2], ""); c.text() != want {
					t.Errorf("output %q, want %q", c.text(), want)
				}
			})
		}
	}
}

// TestConnectionReuse: sequential streams share one connection.
func TestConnectionReuse(t *testing.T) {
	for _, kind := range httpKinds {
		t.Run(kind, func(t *testing.T) {
			srv := newServer(t)
			p := newProvider(t, srv, kind, "m", nil)
			for i := range 5 {
				if _, err := p.Stream(context.Background(), completion(), (&collector{}).sink); err != nil {
					t.Fatalf("stream %d: %v", i, err)
				}
			}
			if n := srv.NewConns(); n != 1 {
				t.Errorf("5 streams opened %d connections, want 1", n)
			}
		})
	}
}

// TestErrorsCarryNoContent: what a provider's error says about the request never reaches
// the error, and neither does the key.
func TestErrorsCarryNoContent(t *testing.T) {
	srv := newServer(t)
	srv.Script(func(r *providertest.Request) providertest.Reply {
		return providertest.Reply{Status: 400, ErrorType: "invalid_request_error " + canary, ErrorCode: canary + " " + r.APIKey,
			ErrorMessage: "bad: " + r.Prompt}
	})
	for _, kind := range httpKinds {
		_, err := newProvider(t, srv, kind, "m", nil).Stream(context.Background(), completion(), (&collector{}).sink)
		if err == nil || strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: error %v", kind, err)
		}
		if s := fmt.Sprintf("%+v %#v", err, err); strings.Contains(s, canary) {
			t.Errorf("%s: formatted error holds content", kind)
		}
	}
}

func TestMaxTokensField(t *testing.T) {
	srv := newServer(t)
	var got *providertest.Request
	srv.Script(func(r *providertest.Request) providertest.Reply { got = r; return providertest.Reply{} })
	p := newProvider(t, srv, KindOpenAIChat, "m", func(m *ModelConfig) {
		m.Options = map[string]string{OptionMaxTokensField: "max_completion_tokens"}
		m.MaxTokens = 99
	})
	if _, err := p.Stream(context.Background(), completion(), (&collector{}).sink); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got.Body), `"max_completion_tokens":99`) || strings.Contains(string(got.Body), `"max_tokens"`) {
		t.Errorf("body %s", got.Body)
	}
}
