package bench

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestServeBare drives the bare server as the probe does: initialize, a didChange, an inline
// completion with one suggestion, then exit ends it.
func TestServeBare(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		err := ServeBare(inR, outW)
		outW.Close()
		served <- err
	}()
	c := NewClient(outR, inW, ClientOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Call(ctx, "initialize", InitParams("file:///w", true, nil)); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	doc := NewDoc("file:///w/a.go")
	if err := doc.Open(c); err != nil {
		t.Fatal(err)
	}
	pos, err := doc.NewContext(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{MethodInlineCompletion, MethodCompletion} {
		res, err := c.Call(ctx, method, RequestParams(method, doc.URI, pos))
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if n, err := CountItems(res.Raw); err != nil || n != 1 {
			t.Errorf("%s: %d items (%v), want 1", method, n, err)
		}
	}
	if err := c.Notify("exit", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("ServeBare: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("ServeBare did not end after exit")
	}
	inW.Close()
	<-c.Done()
}
