//go:build !goexperiment.runtimesecret

package main

// secretly runs f. Built with GOEXPERIMENT=runtimesecret, it erases what f frees (see
// secret_on.go).
func secretly(f func()) { f() }

// secretMode names the protection, for the log.
const secretMode = "none"
