package upstream

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	wire "github.com/codingplan/codingplan/shared"
)

// opsProvider is a Provider that answers every request with one piece of output.
type opsProvider struct{ calls *[]string }

func (p opsProvider) Stream(_ context.Context, req *Request, sink Sink) (Result, error) {
	*p.calls = append(*p.calls, req.Model)
	return Result{FinishReason: "stop"}, sink(0, []byte("x"))
}

func TestModelsAndOps(t *testing.T) {
	var calls []string
	f := func(ModelConfig, Env) (Provider, error) { return opsProvider{&calls}, nil }
	r, err := New(Config{
		Models: []ModelConfig{
			{Name: "chat", Provider: "fake", Ops: []string{wire.OpCompletion}, Fallback: []string{"both", "local"}},
			{Name: "local", Provider: KindLocal},
			{Name: "both", Provider: "fake", Ops: []string{wire.OpEdit, wire.OpCompletion}, Aliases: []string{"b"}},
		},
		DefaultModel: "b",
		PlanModels:   map[string][]string{"lite": {"chat", "local"}},
	}, Options{Factories: map[string]Factory{"fake": f, KindLocal: f}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		plan string
		want []wire.Model
	}{
		{"lite", []wire.Model{{Name: "chat", Ops: []string{"completion"}}, {Name: "local", Ops: []string{"completion"}}}},
		{"pro", []wire.Model{{Name: "chat", Ops: []string{"completion"}}, {Name: "local", Ops: []string{"completion"}},
			{Name: "both", Aliases: []string{"b"}, Ops: []string{"edit", "completion"}, Default: true}}},
	}
	for _, tt := range tests {
		if got := r.Models(tt.plan); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Models(%q):\ngot  %+v\nwant %+v", tt.plan, got, tt.want)
		}
	}

	edit := &Request{Op: wire.OpEdit, Edit: &wire.Edit{Instruction: "x"}}
	rt, err := r.Resolve("pro", "chat")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Stream(context.Background(), edit, func(int, []byte) error { return nil }); !errors.Is(err, ErrUnsupported) {
		t.Errorf("edit on a completion-only model: got %v, want ErrUnsupported", err)
	}
	if len(calls) != 0 {
		t.Errorf("a provider was called: %v", calls)
	}
	rt, _ = r.Resolve("pro", "b")
	if _, err := rt.Stream(context.Background(), edit, func(int, []byte) error { return nil }); err != nil || !reflect.DeepEqual(calls, []string{"both"}) {
		t.Errorf("edit on a model serving it: err %v, calls %v", err, calls)
	}
}

func TestOpsValidation(t *testing.T) {
	tests := []struct {
		m    ModelConfig
		want string
	}{
		{ModelConfig{Name: "l", Provider: KindLocal, Ops: []string{"edit"}}, "the local model cannot serve edit"},
		{ModelConfig{Name: "c", Provider: KindOpenAIChat, BaseURL: "http://x", Ops: []string{"chat"}}, `unknown op "chat"`},
	}
	for _, tt := range tests {
		err := tt.m.validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("validate(%+v) = %v, want %q", tt.m, err, tt.want)
		}
	}
	ok := ModelConfig{Name: "l", Provider: KindLocal, Ops: []string{"completion"}}
	if err := ok.validate(); err != nil {
		t.Errorf("validate(%+v) = %v", ok, err)
	}
}
