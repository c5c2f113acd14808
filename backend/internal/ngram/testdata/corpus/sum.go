package corpus

import "fmt"

// Sum adds up xs.
func Sum(xs []int) int {
	total := 0
	for _, x := range xs {
		total += x
	}
	return total
}

// Max returns the largest of xs.
func Max(xs []int) (int, error) {
	if len(xs) == 0 {
		return 0, fmt.Errorf("no values")
	}
	best := xs[0]
	for _, x := range xs {
		if x > best {
			best = x
		}
	}
	return best, nil
}
