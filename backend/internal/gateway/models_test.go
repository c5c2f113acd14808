package gateway

import (
	"context"
	"os"
	"reflect"
	"testing"

	"github.com/codingplan/codingplan/backend/internal/upstream"
	wire "github.com/codingplan/codingplan/shared"
)

// TestHelloModels: hello lists the plan's models as the golden frame hello-models.json does
// (a configured provider's model serving both ops as the default, the local model completion
// only and still loading), and when the local model is ready every connection gets a new
// hello saying so.
func TestHelloModels(t *testing.T) {
	data, err := os.ReadFile("../../../shared/testdata/server/hello-models.json")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := wire.DecodeServer(data)
	if err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	loader := upstream.NewLocalLoader(func(upstream.ModelConfig, upstream.Env) (upstream.Provider, error) {
		<-release
		return &fakeProvider{}, nil
	}, t.TempDir(), nil, nil)
	router, err := upstream.New(upstream.Config{
		Models: []upstream.ModelConfig{
			{Name: "coder", Aliases: []string{"default"}, Provider: upstream.KindOpenAIChat, BaseURL: "http://127.0.0.1:9"},
			{Name: "local", Provider: upstream.KindLocal},
			{Name: "big", Provider: upstream.KindAnthropic, BaseURL: "http://127.0.0.1:9"},
		},
		PlanModels: map[string][]string{"pro": {"coder", "local"}},
	}, upstream.Options{Factories: map[string]upstream.Factory{upstream.KindLocal: loader.Factory()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
		loader.Wait()
	})
	h := newHarness(t, setup{deps: Deps{Models: router}})
	loader.OnChange(func() { h.srv.ModelsChanged(context.Background()) })

	c := h.dial(h.token(nil))
	if !reflect.DeepEqual(c.hello.Models, golden.Models) {
		t.Fatalf("hello models:\ngot  %+v\nwant %+v", c.hello.Models, golden.Models)
	}

	close(release)
	again := c.expect(wire.TypeHello)
	want := append([]wire.Model(nil), golden.Models...)
	want[1].State = ""
	if !reflect.DeepEqual(again.Models, want) {
		t.Errorf("hello after loading:\ngot  %+v\nwant %+v", again.Models, want)
	}
	if again.Plan == nil || again.Plan.Name != "pro" || again.ExpiresAt != c.hello.ExpiresAt {
		t.Errorf("hello after loading changed the rest: %+v", again)
	}
}
