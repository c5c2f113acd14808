// Package ngram is codingplan's built-in code model: a statistical n-gram model of code
// tokens, trained on public source code, that continues the code before the cursor. It is what
// the backend's "local" model provider (upstream.LocalFactory) serves, so that the backend
// completes code with no API key, no model server, no network and no download; and what
// codingplan-ngrameval measures. docs/local-model.md describes it for operators.
//
// Open returns a Model for a Config: it loads the model file kept in Config.StateDir when that
// file was built from the same corpus, settings and format version, and otherwise trains a new
// model on the corpus (the Go toolchain's source tree and Config.CorpusDirs) and saves it
// there. Training tokenizes every corpus file (Go with go/scanner, other languages with a
// generic tokenizer that knows their comment and quote syntax), counts the n-grams of up to
// Config.Order tokens, and weighs them by interpolated modified Kneser-Ney. Model.Complete then
// decodes greedily, token by token, mixing in a cache of the request's own tokens so that it
// can name the file's own identifiers, and shows only what it is confident of (cut.go): it cuts
// the completion before an unsure token, a closing bracket nothing opened, a Go identifier out
// of scope (scope.go: read from the prefix, suffix and the other open files) or a call with an
// argument count the corpus never used (arity.go), back to the end of a balanced expression or
// of the line. Evaluate measures a Model on held-out corpus files; EvaluatePrecision measures
// what a user sees (precision, coverage) on those or on any Go code.
//
// Request content stays in the call: the cache lives in memory for one Complete and is dropped
// on return, so nothing of a request changes the Model, reaches its file or a log. A Model is
// immutable and safe for concurrent use.
//
// Limits:
//   - It is not a language model that understands code. It continues idioms it has seen and
//     names identifiers of the request, usually up to the end of the line (or of the block it
//     opened, for a multi-line request); it cannot follow an instruction or make an edit.
//   - It stops rather than guesses, and says nothing at about half the positions where an editor
//     asks: what it shows is right about two times in three (docs/benchmarks.md). It reads at
//     most the last 16 KiB of the prefix and the first 4 KiB of the suffix for its prediction,
//     and up to 1 MiB of prefix, suffix and each snippet for the names in scope.
//   - Its quality is that of its corpus: good for Go (the toolchain's source tree is always at
//     hand), poor for a language the corpus lacks. The toolchain's tree teaches it Go only; a
//     language with no training text is completed from the request's own code alone, rarely.
//     Only public code belongs in the corpus, never a directory that holds users' code.
//   - The first start trains it, from seconds to a minute, and the model and its file are tens
//     of megabytes (about 50 MB for the Go tree); Config.MinCount, Config.Order and
//     Config.MaxCorpusBytes trade quality for size and time.
package ngram
