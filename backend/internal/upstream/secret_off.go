//go:build !goexperiment.runtimesecret

package upstream

// secretly runs f. Built with GOEXPERIMENT=runtimesecret, what f frees is erased (see
// secret_on.go).
func secretly(f func()) { f() }
