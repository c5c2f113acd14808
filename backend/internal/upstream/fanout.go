package upstream

import (
	"context"
	"sync"
)

// fanOut makes the n suggestions of req with n calls of one, each asking for one suggestion,
// for providers whose API makes one per call: all at once when concurrent, else one after
// another (a model that computes on this machine). The output of call i reaches sink as
// suggestion i, one call at a time. The first error (the sink's included) cancels the other
// calls and is returned; fanOut returns only once every call has ended, so that nothing runs
// upstream after the caller's stream (and its lease) ended. Usage adds up over the calls.
func fanOut(ctx context.Context, req *Request, n int, concurrent bool, sink Sink,
	one func(context.Context, *Request, Sink) (Result, error)) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	single := *req
	single.N = 1
	var (
		mu      sync.Mutex // serialises sink calls, and guards what follows
		firstEr error
		results = make([]Result, n)
	)
	call := func(i int) {
		res, err := one(ctx, &single, func(_ int, text []byte) error {
			mu.Lock()
			defer mu.Unlock()
			if firstEr != nil {
				return firstEr // another call failed: this one is being cancelled
			}
			return sink(i, text)
		})
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstEr == nil {
			firstEr = err
			cancel()
		}
		results[i] = res
	}
	if concurrent {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { call(i) })
		}
		wg.Wait()
	} else {
		for i := range n {
			if call(i); firstEr != nil {
				break
			}
		}
	}
	if firstEr != nil {
		return Result{}, firstEr
	}
	res := Result{FinishReason: results[0].FinishReason}
	for i, r := range results {
		if i > 0 {
			res.Later[i-1] = r.Finish(0)
		}
		res.Usage.PromptTokens += r.Usage.PromptTokens
		res.Usage.CompletionTokens += r.Usage.CompletionTokens
	}
	return res, nil
}
