//go:build goexperiment.runtimesecret

package erase

import "runtime/secret"

// Do runs f so that what it allocates is erased once the garbage collector frees it, and its
// registers and stack when it returns (runtime/secret). The protection does not reach the
// goroutines f starts: each starts its own work with Do.
func Do(f func()) { secret.Do(f) }

// Mode names the protection, for the log.
const Mode = "runtime/secret"
