// Package erase runs the language server's goroutines so that the memory they free is erased
// (runtime/secret, with GOEXPERIMENT=runtimesecret): a closed document's text must not stay in
// memory the runtime has not reused yet. Every goroutine that handles content starts its work
// with Do, since the protection does not pass to the goroutines a protected function starts.
package erase
