package corpus

import (
	"errors"
	"fmt"
)

// Hello greets someone.
func Hello(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	fmt.Println("hello", name)
	return nil
}

// Goodbye says goodbye.
func Goodbye(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	fmt.Println("goodbye", name)
	return nil
}
