//go:build goexperiment.runtimesecret

package upstream

import "runtime/secret"

// secretly runs f so that what it allocates is erased once the garbage collector frees it
// (runtime/secret; Go 1.26+ with GOEXPERIMENT=runtimesecret, which make build sets).
func secretly(f func()) { secret.Do(f) }
