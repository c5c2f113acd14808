package ngram

import (
	"errors"
	"runtime"
)

// ErrNoCorpus means there was no source code to train on: no Go toolchain
// source tree was found and no corpus directory was given, or they held no
// source files.
var ErrNoCorpus = errors.New("ngram: no training corpus")

// Config says what the model learns from and how. The zero value of every
// field but StateDir means its default.
type Config struct {
	// StateDir is the directory that keeps the trained model file. Required.
	StateDir string
	// CorpusDirs are directories of public source code to learn from, besides
	// the Go toolchain's own source tree. Never a directory that holds user
	// content.
	CorpusDirs []string
	// NoGoroot leaves the Go toolchain's source tree (`go env GOROOT`/src) out
	// of the corpus.
	NoGoroot bool
	// Order is the number of tokens in the longest n-gram, the predicted token
	// included. Default 5.
	Order int
	// MinCount drops n-grams of two or more tokens seen fewer times than this
	// from the stored model, which bounds its size. Default 2.
	MinCount int
	// VocabMinCount folds tokens seen fewer times than this into an unknown
	// token of their kind. Default 2.
	VocabMinCount int
	// HoldOutPercent of the corpus files, chosen by a hash of their path, are
	// never trained on: they are the evaluation set. Default 5; negative for 0.
	HoldOutPercent int
	// MaxCorpusBytes caps how much source training reads; over the cap, a
	// fixed pseudo-random sample of the files is used. Default 0: no cap.
	MaxCorpusBytes int64
	// Workers is how many goroutines tokenize and sort. Default GOMAXPROCS.
	Workers int
	// MinTokenProb makes completions stop before a token whose probability
	// is below it: fewer wrong suggestions, fewer exact ones (see
	// docs/benchmarks.md). It does not change the model file. Default 0.
	MinTokenProb float64

	goroot string // the Go toolchain's root instead of `go env GOROOT`, for tests
}

const (
	defaultOrder          = 5
	defaultMinCount       = 2
	defaultVocabMinCount  = 2
	defaultHoldOutPercent = 5
	maxOrder              = 8
)

// withDefaults fills zero fields with their defaults.
func (c Config) withDefaults() Config {
	if c.Order <= 0 {
		c.Order = defaultOrder
	}
	c.Order = min(c.Order, maxOrder)
	if c.Order < 2 {
		c.Order = 2
	}
	if c.MinCount <= 0 {
		c.MinCount = defaultMinCount
	}
	if c.VocabMinCount <= 0 {
		c.VocabMinCount = defaultVocabMinCount
	}
	switch {
	case c.HoldOutPercent == 0:
		c.HoldOutPercent = defaultHoldOutPercent
	case c.HoldOutPercent < 0:
		c.HoldOutPercent = 0
	}
	c.HoldOutPercent = min(c.HoldOutPercent, 50)
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	return c
}
