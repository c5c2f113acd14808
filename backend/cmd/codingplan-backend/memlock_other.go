//go:build !linux

package main

import "errors"

// lockMemory would keep the process's memory out of swap (see memlock_linux.go).
func lockMemory() error { return errors.New("not supported on this system") }
