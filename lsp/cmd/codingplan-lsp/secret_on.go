//go:build goexperiment.runtimesecret

package main

import "runtime/secret"

// secretly runs f, and every goroutine f starts, so that what they allocate is erased once
// the garbage collector frees it (runtime/secret; Go 1.26+ with GOEXPERIMENT=runtimesecret).
func secretly(f func()) { secret.Do(f) }

// secretMode names the protection, for the log.
const secretMode = "runtime/secret"
