package upstream

import (
	"bytes"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	wire "github.com/codingplan/codingplan/shared"
	"github.com/go-json-experiment/json/jsontext"
)

// outcome is what a codec did with a sequence of events.
type outcome struct {
	Text      string         // everything emitted for suggestion 0
	Other     map[int]string // for the other suggestions, when there were some
	Res       Result
	UsageSeen bool
	End       bool   // an event was the end marker
	Err       string // the first error, which ends the sequence
}

// runEvents feeds each event to c, as relay does, until the end marker or an error.
func runEvents(t testing.TB, c codec, events [][]byte) outcome {
	t.Helper()
	return feedEvents(t, func() codec { return c }, events)
}

// feedEvents feeds each event to the codec next returns for it, as relay does, until the end
// marker or an error.
func feedEvents(t testing.TB, next func() codec, events [][]byte) outcome {
	t.Helper()
	var out outcome
	dog := startWatchdog(DefaultTimeouts, func(error) {})
	defer dog.stop()
	st := out.state(dog)
	for _, ev := range events {
		end, err := next().event(nil, ev, st)
		if err != nil {
			if !errors.Is(err, ErrFailed) {
				t.Fatalf("error %v does not wrap ErrFailed", err)
			}
			out.Err = err.Error()
			break
		}
		if end {
			out.End = true
			break
		}
	}
	out.Res, out.UsageSeen = st.res, st.usageSeen
	return out
}

// state is a streamState whose output goes to o.
func (o *outcome) state(dog *watchdog) *streamState {
	return &streamState{out: func(i int, p []byte) error {
		if i == 0 {
			o.Text += string(p)
			return nil
		}
		if o.Other == nil {
			o.Other = map[int]string{}
		}
		o.Other[i] += string(p)
		return nil
	}, dog: dog}
}

func TestOpenAIChunkDecode(t *testing.T) {
	chunk := func(choices string) string {
		return `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[` + choices + `],"usage":null}`
	}
	tests := []struct {
		name        string
		completions bool
		events      []string
		want        outcome
	}{
		{"text", false, []string{chunk(`{"index":0,"delta":{"content":"a"},"finish_reason":null}`), chunk(`{"index":0,"delta":{"content":" b"}}`)},
			outcome{Text: "a b"}},
		{"escapes", false, []string{chunk(`{"index":0,"delta":{"content":"\"\\\n\t\u00e9\ud83d\ude00\/"}}`)}, outcome{Text: "\"\\\n\té😀/"}},
		{"role chunk", false, []string{chunk(`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`)}, outcome{}},
		{"content null", false, []string{chunk(`{"index":0,"delta":{"content":null}}`)}, outcome{}},
		{"index after delta", false, []string{chunk(`{"delta":{"content":"x"},"index":1},{"delta":{"content":"y"},"index":0}`)}, outcome{Text: "y"}},
		{"other choices skipped", false, []string{chunk(`{"index":1,"delta":{"content":"x"},"finish_reason":"length"}`)}, outcome{}},
		{"null choice", false, []string{chunk(`null,{"index":0,"delta":{"content":"y"}}`)}, outcome{Text: "y"}},
		{"finish", false, []string{chunk(`{"index":0,"delta":{},"finish_reason":"length"}`), `[DONE]`},
			outcome{Res: Result{FinishReason: wire.FinishLength}, End: true}},
		{"usage", false, []string{`{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":0}}}`},
			outcome{Res: Result{Usage: wire.Usage{PromptTokens: 12, CompletionTokens: 3}}, UsageSeen: true}},
		{"empty usage", false, []string{`{"usage":{}}`}, outcome{UsageSeen: true}},
		{"null usage and choices", false, []string{`{"choices":null,"usage":null,"error":null}`}, outcome{}},
		{"top-level null", false, []string{`null`}, outcome{}},
		{"escaped names", false, []string{`{"ch\u006fices":[{"index":0,"d\u0065lta":{"cont\u0065nt":"z"}}]}`}, outcome{Text: "z"}},
		// encoding/json matches names case-insensitively: the legacy decoder reads "z".
		{"names match exactly", false, []string{`{"Choices":[{"index":0,"delta":{"content":"z"}}]}`}, outcome{}},
		{"blank space", false, []string{" \t\r\n{ \"choices\" : [ { \"delta\" : { \"content\" : \"w\" } } ] } \n"}, outcome{Text: "w"}},
		{"deep skipped value", false, []string{`{"x":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `,"choices":[{"delta":{"content":"d"}}]}`}, outcome{Text: "d"}},
		{"negative zero index", false, []string{chunk(`{"index":-0,"delta":{"content":"n"}}`)}, outcome{Text: "n"}},
		{"completions text", true, []string{`{"id":"cmpl-1","object":"text_completion","choices":[{"text":"t","index":0,"logprobs":null,"finish_reason":"stop"}]}`},
			outcome{Text: "t", Res: Result{FinishReason: wire.FinishStop}}},
		{"completions ignore delta", true, []string{chunk(`{"index":0,"delta":{"content":"x"},"text":"y"}`)}, outcome{Text: "y"}},
		{"error event", false, []string{`{"error":{"message":"quotes ` + canary + `","type":"server_error","param":null,"code":"rate_limit_exceeded"}}`},
			outcome{Err: "model provider failed: error event (type: server_error, code: rate_limit_exceeded)"}},
		{"error number code", false, []string{`{"error":{"type":"x","code":429}}`}, outcome{Err: "model provider failed: error event (type: x, code: 429)"}},
		{"empty error", false, []string{`{"error":{}}`}, outcome{Err: "model provider failed: error event"}},
		{"unterminated", false, []string{`{"choices":[{"index":0,"delta":{"content":"unterminated`},
			outcome{Err: "model provider failed: malformed chunk: unexpected end of the JSON value"}},
		{"empty", false, []string{``}, outcome{Err: "model provider failed: malformed chunk: unexpected end of the JSON value"}},
		{"trailing data", false, []string{`{} {}`}, outcome{Err: "model provider failed: malformed chunk: data after the JSON value"}},
		{"trailing garbage", false, []string{`{}x`}, outcome{Err: "model provider failed: malformed chunk: syntax error at byte 2"}},
		{"bad literal in skipped value", false, []string{`{"logprobs":nul,"choices":[]}`}, outcome{Err: "model provider failed: malformed chunk: syntax error at byte 15"}},
		{"content number", false, []string{chunk(`{"index":0,"delta":{"content":5}}`)}, outcome{Err: "model provider failed: malformed chunk: field content has the wrong type"}},
		{"index fraction", false, []string{chunk(`{"index":0.0}`)}, outcome{Err: "model provider failed: malformed chunk: field index has the wrong type"}},
		{"index exponent", false, []string{chunk(`{"index":0e0}`)}, outcome{Err: "model provider failed: malformed chunk: field index has the wrong type"}},
		{"index overflow", false, []string{chunk(`{"index":9223372036854775808}`)}, outcome{Err: "model provider failed: malformed chunk: field index has the wrong type"}},
		{"index string", false, []string{chunk(`{"index":"0"}`)}, outcome{Err: "model provider failed: malformed chunk: field index has the wrong type"}},
		{"choices object", false, []string{`{"choices":{}}`}, outcome{Err: "model provider failed: malformed chunk: field choices has the wrong type"}},
		{"usage array", false, []string{`{"usage":[]}`}, outcome{Err: "model provider failed: malformed chunk: field usage has the wrong type"}},
		{"top-level array", false, []string{`[]`}, outcome{Err: "model provider failed: malformed chunk: field chunk has the wrong type"}},
		{"text before an error is not emitted", false, []string{chunk(`{"index":0,"delta":{"content":"early"}}`) + `,`},
			outcome{Err: "model provider failed: malformed chunk: syntax error at byte 141"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c, legacy codec = &openAIChat{}, &legacyOpenAIChat{}
			if tt.completions {
				c, legacy = &openAICompletions{}, &legacyCompletions{}
			}
			events := make([][]byte, len(tt.events))
			for i, e := range tt.events {
				events[i] = []byte(e)
			}
			if got := runEvents(t, c, events); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			// The legacy decoder agrees, but for its error messages.
			got := runEvents(t, legacy, events)
			if (got.Err == "") != (tt.want.Err == "") {
				t.Errorf("legacy error %q, want %q", got.Err, tt.want.Err)
			}
			got.Err = tt.want.Err
			if !reflect.DeepEqual(got, tt.want) && tt.name != "names match exactly" {
				t.Errorf("legacy got %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

func TestAnthropicEventDecode(t *testing.T) {
	tests := []struct {
		name   string
		events []string
		want   outcome
	}{
		{"stream", []string{
			`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":2,"cache_read_input_tokens":3,"output_tokens":1}}}`,
			`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
			`{"type": "ping"}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\nb"}}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}`,
			`{"type":"content_block_stop","index":0}`,
			`{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":7}}`,
			`{"type":"message_stop"}`,
			`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"after the end"}}`,
		}, outcome{Text: "a\nb", Res: Result{FinishReason: wire.FinishLength, Usage: wire.Usage{PromptTokens: 15, CompletionTokens: 7}}, UsageSeen: true, End: true}},
		{"type after delta", []string{`{"delta":{"text":"x","type":"text_delta"},"type":"content_block_delta"}`}, outcome{Text: "x"}},
		{"unknown type", []string{`{"type":"thinking_delta","delta":{"type":"text_delta","text":"x"}}`}, outcome{}},
		{"message_delta input", []string{`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":4,"output_tokens":2}}`},
			outcome{Res: Result{FinishReason: wire.FinishStop, Usage: wire.Usage{PromptTokens: 4, CompletionTokens: 2}}, UsageSeen: true}},
		{"error", []string{`{"type":"error","error":{"type":"overloaded_error","message":"` + canary + `"}}`},
			outcome{Err: "model provider failed: error event (type: overloaded_error)"}},
		{"error without object", []string{`{"type":"error","error":null}`}, outcome{Err: "model provider failed: error event"}},
		{"malformed", []string{`{"type":"content_block_delta","delta":{"type":"text_delta","text":"` + canary},
			outcome{Err: "model provider failed: malformed event: unexpected end of the JSON value"}},
		{"usage string", []string{`{"type":"message_delta","usage":{"output_tokens":"7"}}`},
			outcome{Err: "model provider failed: malformed event: field output_tokens has the wrong type"}},
		{"message array", []string{`{"type":"message_start","message":[]}`},
			outcome{Err: "model provider failed: malformed event: field message has the wrong type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := make([][]byte, len(tt.events))
			for i, e := range tt.events {
				events[i] = []byte(e)
			}
			if got := runEvents(t, &anthropic{}, events); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			got := runEvents(t, &legacyAnthropic{}, events)
			if (got.Err == "") != (tt.want.Err == "") {
				t.Errorf("legacy error %q, want %q", got.Err, tt.want.Err)
			}
			got.Err = tt.want.Err
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("legacy got %+v\nwant       %+v", got, tt.want)
			}
		})
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"7", 7, true}, {"-12", -12, true},
		{"9223372036854775807", 9223372036854775807, true}, {"-9223372036854775808", -9223372036854775808, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false}, {"99999999999999999999", 0, false},
		{"1.0", 0, false}, {"1e2", 0, false}, {"-", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseInt([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseInt(%s) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestDecodeAllocs checks that decoding a warm codec's events allocates nothing.
func TestDecodeAllocs(t *testing.T) {
	dog := startWatchdog(DefaultTimeouts, func(error) {})
	defer dog.stop()
	st := &streamState{out: func(int, []byte) error { return nil }, dog: dog}
	tests := []struct {
		c    codec
		data string
	}{
		{&openAIChat{}, `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":" err\n"},"logprobs":null,"finish_reason":null}],"usage":null}`},
		{&openAICompletions{}, `{"id":"cmpl-1","choices":[{"text":"x","index":0,"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`},
		{&anthropic{}, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\tif"}}`},
	}
	for _, tt := range tests {
		data := []byte(tt.data)
		if n := testing.AllocsPerRun(100, func() {
			if _, err := tt.c.event(nil, data, st); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%T: %v allocations per event", tt.c, n)
		}
	}
}

// errorShape is every error message the codecs make: kinds, offsets, field names and the
// provider's error type and code when they look like identifiers; never input text.
var errorShape = regexp.MustCompile(`^model provider failed: (malformed (chunk|event): (syntax error at byte \d+|` +
	`field [a-z_.]+ has the wrong type|unexpected end of the JSON value|data after the JSON value|bad string|not JSON)|` +
	`error event( \((type: [A-Za-z0-9_.-]+)?(, )?(code: [A-Za-z0-9_.-]+)?\))?)$`)

// fuzzEvents splits a fuzz input into events, as many SSE data lines.
func fuzzEvents(in []byte) [][]byte { return bytes.Split(in, []byte("\n")) }

// comparable reports whether encoding/json must decode every event of events as eventDecoder
// does: valid JSON with valid UTF-8 and no duplicate names (jsontext's defaults), and no
// string that encoding/json's case-insensitive name matching could take for a field name.
func comparable(events [][]byte, fields []string) bool {
	for _, ev := range events {
		if bytes.Equal(ev, doneMarker) {
			continue
		}
		if !jsontext.Value(ev).IsValid() {
			return false
		}
		d := jsontext.NewDecoder(bytes.NewReader(ev))
		for {
			tok, err := d.ReadToken()
			if err != nil {
				break
			}
			if tok.Kind() != '"' {
				continue
			}
			s := noDelims.Replace(tok.String())
			for _, f := range fields {
				if tok.String() != f && strings.EqualFold(s, noDelims.Replace(f)) {
					return false
				}
			}
		}
	}
	return true
}

var noDelims = strings.NewReplacer("_", "", "-", "")

var (
	openAIFields    = []string{"choices", "index", "delta", "content", "text", "finish_reason", "usage", "prompt_tokens", "completion_tokens", "error", "type", "code"}
	anthropicFields = []string{"type", "delta", "text", "stop_reason", "message", "usage", "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens", "error", "code"}
)

// fuzzCodec checks new against legacy on the events of in: the same outcome on what both must
// decode alike, and on anything else no panic and only errors of the expected shape.
func fuzzCodec(t *testing.T, in []byte, fields []string, newCodec, legacyCodec codec) {
	events := fuzzEvents(in)
	got := runEvents(t, newCodec, events)
	if got.Err != "" && !errorShape.MatchString(got.Err) {
		t.Fatalf("error %q has an unexpected shape", got.Err)
	}
	if !comparable(events, fields) {
		return
	}
	want := runEvents(t, legacyCodec, events)
	if (got.Err == "") != (want.Err == "") {
		t.Fatalf("error %q, legacy error %q", got.Err, want.Err)
	}
	got.Err, want.Err = "", ""
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got    %+v\nlegacy %+v", got, want)
	}
}

// fuzzSeeds adds the events of the fake provider's streams and a few odd ones.
func fuzzSeeds(f *testing.F, kind string, odd ...string) {
	for _, s := range odd {
		f.Add([]byte(s))
	}
	sse, err := readAll(bytes.NewReader(recordStream(f, kind)), MaxLineBytes)
	if err != nil {
		f.Fatal(err)
	}
	var all [][]byte
	for _, ev := range sse {
		f.Add([]byte(ev.Data))
		all = append(all, []byte(ev.Data))
	}
	f.Add(bytes.Join(all[:min(len(all), 8)], []byte("\n")))
}

// jsonGen builds JSON values from fuzz input: objects whose member names come mostly from
// the fields a codec reads, so that mutations explore their types and nesting, not only
// syntax errors.
type jsonGen struct {
	in     []byte
	fields []string
}

func (g *jsonGen) byte() byte {
	if len(g.in) == 0 {
		return 0
	}
	b := g.in[0]
	g.in = g.in[1:]
	return b
}

var genScalars = []string{`null`, `true`, `false`, `0`, `-0`, `1`, `-1`, `2`, `1.5`, `1e2`, `9223372036854775807`,
	`9223372036854775808`, `-9223372036854775808`, `""`, `"a"`, `"stop"`, `"length"`, `"end_turn"`, `"max_tokens"`,
	`"text_delta"`, `"content_block_delta"`, `"message_start"`, `"message_delta"`, `"message_stop"`, `"error"`,
	`"\n\"\\\/\u00e9\ud83d\ude00"`, `"\ud800"`, `"é\t"`, `"[DONE]"`, `"server_error"`}

// genShapes is the type each field usually has: most generated values have it.
var genShapes = map[string]byte{
	"choices": '[', "delta": '{', "usage": '{', "error": '{', "message": '{',
	"content": '"', "text": '"', "type": '"', "finish_reason": '"', "stop_reason": '"', "code": '"',
	"index": '0', "prompt_tokens": '0', "completion_tokens": '0', "input_tokens": '0', "output_tokens": '0',
	"cache_creation_input_tokens": '0', "cache_read_input_tokens": '0',
}

// genChildren are the member names usually found in the object that is the value of a
// member (or an element of an array that is), by its name; "" is the top level.
var genChildren = map[string][]string{
	"":        {"choices", "usage", "error", "type", "delta", "message", "id"},
	"choices": {"index", "delta", "text", "finish_reason", "logprobs"},
	"delta":   {"content", "type", "text", "stop_reason", "role"},
	"usage":   {"prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"},
	"message": {"usage", "id", "content"},
	"error":   {"type", "code", "message"},
}

// member generates the value of a member named name.
func (g *jsonGen) member(dst []byte, name string, depth int) []byte {
	shape, ok := genShapes[name]
	if !ok || g.byte() >= 200 {
		return g.value(dst, depth, name)
	}
	b := g.byte()
	switch shape {
	case '[':
		return g.value(dst, depth, name, 64+b%32)
	case '{':
		return g.value(dst, depth, name, b%64)
	case '"':
		return append(dst, genScalars[13+int(b)%(len(genScalars)-13)]...)
	}
	return append(dst, genScalars[3+int(b)%10]...)
}

// value generates a value, of the kind pick says when given, as the value of a member named
// parent.
func (g *jsonGen) value(dst []byte, depth int, parent string, pick ...byte) []byte {
	b := g.byte()
	if len(pick) > 0 {
		b = pick[0]
	}
	switch {
	case b < 64 && depth < 5:
		dst = append(dst, '{')
		seen := map[string]bool{}
		for range int(g.byte() % 5) {
			name := g.fields[int(g.byte())%len(g.fields)]
			if c := genChildren[parent]; len(c) > 0 && g.byte() < 192 {
				name = c[int(g.byte())%len(c)]
			}
			if seen[name] {
				continue // no duplicate names: encoding/json would merge them
			}
			if len(seen) > 0 {
				dst = append(dst, ',')
			}
			seen[name] = true
			dst = append(dst, '"')
			dst = append(dst, name...)
			dst = append(dst, '"', ':')
			dst = g.member(dst, name, depth+1)
		}
		return append(dst, '}')
	case b < 96 && depth < 5:
		dst = append(dst, '[')
		for i := range int(g.byte() % 4) {
			if i > 0 {
				dst = append(dst, ',')
			}
			if g.byte() < 200 {
				dst = g.value(dst, depth+1, parent, 0) // an object, as array elements are here
			} else {
				dst = g.value(dst, depth+1, parent)
			}
		}
		return append(dst, ']')
	}
	return append(dst, genScalars[int(b)%len(genScalars)]...)
}

// generated returns one to three events built from in, the first one an object.
func generated(in []byte, fields []string) []byte {
	g := &jsonGen{in: in, fields: slices.Concat(fields, []string{"x", "id"})}
	var out []byte
	for i := range int(g.byte()%3) + 1 {
		if i > 0 {
			out = append(out, '\n')
		}
		g.in = append([]byte{0}, g.in...) // an object
		out = g.value(out, 0, "")
	}
	return out
}

func FuzzOpenAIChunk(f *testing.F) {
	fuzzSeeds(f, KindOpenAIChat,
		`{"choices":[{"index":0,"delta":{"content":"a\u00e9\ud83d\ude00"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
		`{"choices":[{"index":1,"text":"x"},{"text":"y","index":0,"finish_reason":"length"}]}`+"\n[DONE]",
		`{"error":{"type":"server_error","code":"x"}}`, `null`, `{"choices":null,"usage":{}}`, `{"ch\u006fices":[]}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		gen := generated(in, openAIFields)
		for _, in := range [][]byte{in, gen} {
			fuzzCodec(t, in, openAIFields, &openAIChat{}, &legacyOpenAIChat{})
			fuzzCodec(t, in, openAIFields, &openAICompletions{}, &legacyCompletions{})
		}
	})
}

func FuzzAnthropicEvent(f *testing.F) {
	fuzzSeeds(f, KindAnthropic,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":4,"output_tokens":2}}`,
		`{"type":"error","error":{"type":"overloaded_error","message":"m"}}`,
		`{"type":"content_block_delta","delta":{"type":"text_delta","text":"\n"}}`+"\n"+`{"type":"message_stop"}`)
	f.Fuzz(func(t *testing.T, in []byte) {
		gen := generated(in, anthropicFields)
		for _, in := range [][]byte{in, gen} {
			fuzzCodec(t, in, anthropicFields, &anthropic{}, &legacyAnthropic{})
		}
	})
}

// TestOpenAIChunkTemplate checks the fast path (upstream.textTemplate): events that repeat the
// bytes around the text of an earlier text-only event are decoded from the string alone, and
// give what the tokenizer (and the legacy reflection decoder) give; events that differ
// anywhere else, or whose middle is not exactly one valid string, take the slow path.
func TestOpenAIChunkTemplate(t *testing.T) {
	chat := func(rest string) string {
		return `{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{` + rest + `},"logprobs":null,"finish_reason":null}]}`
	}
	legacy := func(s string) string {
		return `{"id":"cmpl-7","object":"text_completion","created":1,"choices":[{"text":` + s + `,"index":0,"logprobs":null,"finish_reason":null}],"model":"m"}`
	}
	tests := []struct {
		name        string
		completions bool
		events      []string
		fast        int // events the fast path must decode
	}{
		{"stream", false, []string{
			chat(`"role":"assistant","content":""`), chat(`"content":"a"`), chat(`"content":"b\n\t"`),
			chat(`"content":"\u00e9\ud83d\ude00"`), chat(`"content":""`),
			`{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
			`{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}`,
			"[DONE]",
		}, 3},
		{"legacy completions", true, []string{legacy(`"x"`), legacy(`"y\"z"`), legacy(`null`), legacy(`"w"`)}, 2},
		{"escaped quote at the end is not a string end", false, []string{
			chat(`"content":"a"`), chat(`"content":"b\"`) + `"}`,
		}, 0},
		{"two strings in the middle", false, []string{
			chat(`"content":"a"`), chat(`"content":"b","content":"c"`),
		}, 0},
		{"invalid escape", false, []string{chat(`"content":"a"`), chat(`"content":"\q"`)}, 0},
		{"control character", false, []string{chat(`"content":"a"`), chat("\"content\":\"\x01\"")}, 0},
		{"text of another choice never a template", false, []string{
			`{"choices":[{"index":1,"delta":{"content":"a"}}]}`, `{"choices":[{"index":1,"delta":{"content":"b"}}]}`,
		}, 0},
		{"chat ignores text", false, []string{
			`{"choices":[{"index":0,"text":"a"}]}`, `{"choices":[{"index":0,"text":"b"}]}`,
		}, 0},
		{"finish reason set is never a template", false, []string{
			`{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}`,
			`{"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}`,
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events [][]byte
			for _, e := range tt.events {
				events = append(events, []byte(e))
			}
			var c, l codec = &openAIChat{}, &legacyOpenAIChat{}
			if tt.completions {
				c, l = &openAICompletions{}, &legacyCompletions{}
			}
			got, want := runEvents(t, c, events), runEvents(t, l, events)
			if (got.Err == "") != (want.Err == "") {
				t.Fatalf("error %q, legacy error %q", got.Err, want.Err)
			}
			got.Err, want.Err = "", ""
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got    %+v\nlegacy %+v", got, want)
			}
			var chunk *openAIChunk
			switch c := c.(type) {
			case *openAIChat:
				chunk = &c.chunk
			case *openAICompletions:
				chunk = &c.chunk
			}
			if chunk.tmpl[0].hits != tt.fast {
				t.Errorf("fast path decoded %d events, want %d", chunk.tmpl[0].hits, tt.fast)
			}
		})
	}
}

// FuzzTextTemplate feeds pairs of events that share their bytes around a middle part, the
// shape textTemplate looks for, to every codec that uses it, and compares with the legacy
// decoders and with a new codec for each event (which never uses a template).
func FuzzTextTemplate(f *testing.F) {
	f.Add([]byte(`{"id":"c","choices":[{"index":0,"delta":{"content":`), []byte(`"x"`), []byte(`"y\u00e9\n"`), []byte(`},"finish_reason":null}]}`))
	f.Add([]byte(`{"choices":[{"text":`), []byte(`"a"`), []byte(`"b\"c"`), []byte(`,"index":0}]}`))
	f.Add([]byte(`{"choices":[{"index":0,"delta":{"content":`), []byte(`"a"`), []byte(`"a","content":"b"`), []byte(`}}]}`))
	f.Add([]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`), []byte(`"a"`), []byte(`"\t}"`), []byte(`}}`))
	f.Add([]byte(`{"type":"content_block_delta","delta":{"text":`), []byte(`"a"`), []byte(`"b","type":"thinking_delta"`), []byte(`,"type":"text_delta"}}`))
	f.Add([]byte(`{"choices":[{"delta":{"content":`), []byte(`"a"`), []byte(`"b"`), []byte(`},"index":0}]}`))
	f.Add([]byte(`{"choices":[{"index":0,"text":`), []byte(`"a"`), []byte(`"b"},{"index":0,"text":"c"`), []byte(`}]}`))
	type pair struct {
		fresh  func() codec
		legacy func() codec
		fields []string
	}
	pairs := []pair{
		{func() codec { return &openAIChat{} }, func() codec { return &legacyOpenAIChat{} }, openAIFields},
		{func() codec { return &openAICompletions{} }, func() codec { return &legacyCompletions{} }, openAIFields},
		{func() codec { return &anthropic{} }, func() codec { return &legacyAnthropic{} }, anthropicFields},
	}
	f.Fuzz(func(t *testing.T, pre, a, b, suf []byte) {
		for _, p := range [][]byte{pre, a, b, suf} {
			if bytes.ContainsAny(p, "\r\n") {
				return // one event per line
			}
		}
		e1 := slices.Concat(pre, a, suf)
		e2 := slices.Concat(pre, b, suf)
		in := slices.Concat(e1, []byte("\n"), e2, []byte("\n"), e1)
		events := fuzzEvents(in)
		for _, p := range pairs {
			fuzzCodec(t, in, p.fields, p.fresh(), p.legacy())
			// Whatever the input, the template must not change what an event decodes to: one
			// codec for the whole stream gives what a new codec for each event gives.
			sameAsPerEvent(t, p.fresh, events)
		}
		// With several suggestions, each choice has its template, which must never take an
		// event of another choice: the same events with their indexes changed.
		other := func(e []byte, to string) []byte {
			return bytes.ReplaceAll(e, []byte(`"index":0`), []byte(`"index":`+to))
		}
		events = [][]byte{e1, other(e2, "1"), e1, e2, other(e1, "1"), other(e2, "2"), other(e1, "2"), other(e1, "3")}
		for _, fresh := range []func() codec{
			func() codec { return &openAIChat{chunk: openAIChunk{n: 3}} },
			func() codec { return &openAICompletions{chunk: openAIChunk{n: 3}} },
		} {
			sameAsPerEvent(t, fresh, events)
		}
	})
}

// sameAsPerEvent checks that one codec for all events decodes them as a new codec for each
// event does.
func sameAsPerEvent(t *testing.T, fresh func() codec, events [][]byte) {
	t.Helper()
	got, want := runEvents(t, fresh(), events), feedEvents(t, fresh, events)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("one codec %+v\nper event %+v", got, want)
	}
}

// TestAnthropicTemplate checks Anthropic's text deltas take the template path after the first,
// and that other events and other delta types do not.
func TestAnthropicTemplate(t *testing.T) {
	delta := func(s string) []byte {
		return []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":` + s + `}}`)
	}
	events := [][]byte{
		[]byte(`{"type":"message_start","message":{"usage":{"input_tokens":7,"output_tokens":1}}}`),
		[]byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		delta(`"a"`), delta(`"b\n"`), delta(`"\u00e9"`),
		[]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","text":"no"}}`),
		delta(`"c"`),
		[]byte(`{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":4}}`),
		[]byte(`{"type":"message_stop"}`),
	}
	c := &anthropic{}
	got, want := runEvents(t, c, events), runEvents(t, &legacyAnthropic{}, events)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got    %+v\nlegacy %+v", got, want)
	}
	if got.Text != "ab\néc" {
		t.Errorf("text %q", got.Text)
	}
	if c.ev.tmpl.hits != 3 {
		t.Errorf("template path took %d events, want 3 (the text deltas after the first)", c.ev.tmpl.hits)
	}
}
