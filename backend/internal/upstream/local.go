package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/codingplan/codingplan/backend/internal/ngram"
	wire "github.com/codingplan/codingplan/shared"
)

// Options of a model with provider "local", in its [models.options] table. All are optional.
const (
	// LocalCorpusDirs lists extra directories of public source code to train on, separated
	// like PATH (":" on Unix). Never a directory holding user content.
	LocalCorpusDirs = "corpus_dirs"
	// LocalNoGoroot, "true", leaves the Go toolchain's source tree out of the corpus.
	LocalNoGoroot = "no_goroot"
	// LocalStateDir overrides the directory that keeps the trained model file.
	LocalStateDir = "state_dir"
	// LocalOrder, LocalMinCount, LocalVocabMinCount, LocalHoldOutPercent and
	// LocalMaxCorpusBytes set the ngram.Config fields of the same names.
	LocalOrder          = "order"
	LocalMinCount       = "min_count"
	LocalVocabMinCount  = "vocab_min_count"
	LocalHoldOutPercent = "hold_out_percent"
	LocalMaxCorpusBytes = "max_corpus_bytes"
	// LocalMinTokenProb, a number from 0 to 1, stops completions before a less probable
	// token: fewer wrong suggestions, fewer exact ones.
	LocalMinTokenProb = "min_token_prob"
)

// LocalConfig returns the n-gram model settings of a local model: its options, with the
// model file kept in stateDir unless the options say otherwise.
func LocalConfig(m ModelConfig, stateDir string) (ngram.Config, error) {
	cfg := ngram.Config{StateDir: stateDir}
	ints := map[string]*int{
		LocalOrder: &cfg.Order, LocalMinCount: &cfg.MinCount, LocalVocabMinCount: &cfg.VocabMinCount,
		LocalHoldOutPercent: &cfg.HoldOutPercent,
	}
	var errs []error
	for k, v := range m.Options {
		var err error
		switch k {
		case LocalCorpusDirs:
			for _, d := range filepath.SplitList(v) {
				if d = strings.TrimSpace(d); d != "" {
					cfg.CorpusDirs = append(cfg.CorpusDirs, d)
				}
			}
		case LocalNoGoroot:
			cfg.NoGoroot, err = strconv.ParseBool(v)
		case LocalStateDir:
			cfg.StateDir = v
		case LocalMaxCorpusBytes:
			cfg.MaxCorpusBytes, err = strconv.ParseInt(v, 10, 64)
		case LocalMinTokenProb:
			cfg.MinTokenProb, err = strconv.ParseFloat(v, 64)
			if err == nil && (cfg.MinTokenProb < 0 || cfg.MinTokenProb > 1) {
				err = errors.New("not between 0 and 1")
			}
		default:
			p, ok := ints[k]
			if !ok {
				err = errors.New("unknown option")
				break
			}
			*p, err = strconv.Atoi(v)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("option %q: %w", k, err))
		}
	}
	if cfg.StateDir == "" {
		errs = append(errs, errors.New("the local model needs a state dir"))
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("model %q: %w", m.Name, err)
	}
	return cfg, nil
}

// LocalFactory returns the Factory of provider kind "local". It opens each local model's
// n-gram model when the router is built, training it into stateDir the first time (some
// seconds; ctx bounds it), and shares one opened model between local models with the same
// settings.
func LocalFactory(ctx context.Context, stateDir string) Factory {
	var mu sync.Mutex
	opened := map[string]*ngram.Model{}
	return func(m ModelConfig, env Env) (Provider, error) {
		cfg, err := LocalConfig(m, stateDir)
		if err != nil {
			return nil, err
		}
		key := fmt.Sprintf("%+v", cfg)
		mu.Lock()
		defer mu.Unlock()
		model := opened[key]
		if model == nil {
			if model, err = ngram.Open(ctx, cfg, env.Log); err != nil {
				return nil, err
			}
			opened[key] = model
		}
		return NewLocal(m, model), nil
	}
}

// localProvider completes code with the embedded n-gram model. It implements Provider.
type localProvider struct {
	model ModelConfig
	ngram *ngram.Model
}

// NewLocal returns the provider of a local model over an opened n-gram model.
func NewLocal(m ModelConfig, model *ngram.Model) Provider {
	return &localProvider{model: m.withDefaults(), ngram: model}
}

// errStopSequence ends generation when the output reaches a stop sequence.
var errStopSequence = errors.New("stop sequence reached")

// Stream implements Provider. The model only continues code: an edit request fails with
// ErrFailed. Output goes through the same sink as a remote model's, cut at the first stop
// sequence of the request or the model's configuration. Several suggestions are made one
// after another: the model computes on this machine, and the same input gives the same output,
// so they are all alike.
func (p *localProvider) Stream(ctx context.Context, req *Request, sink Sink) (Result, error) {
	if n := req.suggestions(); n > 1 {
		return fanOut(ctx, req, n, false, sink, p.stream)
	}
	return p.stream(ctx, req, sink)
}

// stream makes one suggestion.
func (p *localProvider) stream(ctx context.Context, req *Request, sink Sink) (Result, error) {
	if req.Op != wire.OpCompletion || req.Completion == nil {
		return Result{}, fmt.Errorf("%s: %w: %w", KindLocal, ErrUnsupported, ErrFailed)
	}
	actx, cancel := context.WithTimeoutCause(ctx, p.model.Timeouts.Total, errTotal)
	defer cancel()
	c := req.Completion
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = p.model.MaxTokens
	}
	prefix, suffix := []byte(c.Prefix), []byte(c.Suffix)
	defer clear(prefix)
	defer clear(suffix)
	// Other open files name what the completion may use (ngram.Input).
	snippets := make([][]byte, len(c.Snippets))
	for i, sn := range c.Snippets {
		snippets[i] = []byte(sn.Text)
		defer clear(snippets[i])
	}
	f := newStopFilter(sink, req.Stop, p.model.Stop)
	defer f.clear()

	var st ngram.Stats
	var err error
	secretly(func() { // see collect.go
		st, err = p.ngram.Complete(actx, ngram.Input{Prefix: prefix, Suffix: suffix, Snippets: snippets,
			Language: c.Language, MaxTokens: maxTokens, Multiline: c.Multiline}, f.write)
	})
	collectSoon()
	switch {
	case f.sinkErr != nil:
		return Result{}, f.sinkErr
	case ctx.Err() != nil:
		return Result{}, fmt.Errorf("%s: %w", KindLocal, context.Cause(ctx))
	case errors.Is(err, errStopSequence):
		st.FinishReason = wire.FinishStop
	case err != nil:
		return Result{}, fmt.Errorf("%s: %w: %w", KindLocal, ErrFailed, context.Cause(actx))
	}
	if err := f.flush(); err != nil {
		return Result{}, err
	}
	res := Result{
		FinishReason: wire.FinishStop,
		Usage:        wire.Usage{PromptTokens: st.PromptTokens, CompletionTokens: st.CompletionTokens},
	}
	if st.FinishReason == ngram.FinishLength {
		res.FinishReason = wire.FinishLength
	}
	return res, nil
}

// stopFilter passes output to a sink up to the first stop sequence. It holds back the end of
// the output while it may be the start of a stop sequence.
type stopFilter struct {
	sink    Sink
	stops   [][]byte
	held    []byte
	sinkErr error
}

func newStopFilter(sink Sink, req []wire.Text, model []string) *stopFilter {
	f := &stopFilter{sink: sink}
	for _, s := range req {
		if s != "" {
			f.stops = append(f.stops, []byte(s))
		}
	}
	for _, s := range model {
		if s != "" {
			f.stops = append(f.stops, []byte(s))
		}
	}
	return f
}

// write takes the next piece of output. It returns errStopSequence once a stop sequence is
// complete, after passing on the text before it.
func (f *stopFilter) write(p []byte) error {
	if len(f.stops) == 0 {
		return f.emit(p)
	}
	f.held = append(f.held, p...)
	cut := -1
	for _, s := range f.stops {
		if i := bytes.Index(f.held, s); i >= 0 && (cut < 0 || i < cut) {
			cut = i
		}
	}
	if cut >= 0 {
		err := f.emit(f.held[:cut])
		f.dropHeld(len(f.held))
		if err != nil {
			return err
		}
		return errStopSequence
	}
	keep := 0
	for _, s := range f.stops {
		for k := min(len(s)-1, len(f.held)); k > keep; k-- {
			if bytes.HasSuffix(f.held, s[:k]) {
				keep = k
				break
			}
		}
	}
	n := len(f.held) - keep
	err := f.emit(f.held[:n])
	f.dropHeld(n)
	return err
}

// flush passes on what is held at the end of the output.
func (f *stopFilter) flush() error {
	err := f.emit(f.held)
	f.dropHeld(len(f.held))
	return err
}

func (f *stopFilter) emit(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	// The model makes each piece without waiting for anything, so each is flushed (see
	// Sink) to stream it as soon as it exists.
	err := f.sink(0, p)
	if err == nil {
		err = f.sink(0, nil)
	}
	if err != nil {
		f.sinkErr = err
	}
	return err
}

// dropHeld removes the first n held bytes, clearing what they leave behind.
func (f *stopFilter) dropHeld(n int) {
	rest := copy(f.held, f.held[n:])
	clear(f.held[rest:])
	f.held = f.held[:rest]
}

// clear wipes the held output.
func (f *stopFilter) clear() { clear(f.held[:cap(f.held)]) }
