package bench

import (
	"testing"
	"time"
)

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestSummarize(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // reversed: Summarize must sort
	}
	tests := []struct {
		name    string
		samples []time.Duration
		want    Summary
	}{
		{"empty", nil, Summary{}},
		{"one", ms(7), Summary{N: 1, Min: 7 * time.Millisecond, P50: 7 * time.Millisecond, P90: 7 * time.Millisecond,
			P99: 7 * time.Millisecond, Max: 7 * time.Millisecond, Mean: 7 * time.Millisecond}},
		{"four", ms(4, 1, 3, 2), Summary{N: 4, Min: time.Millisecond, P50: 2 * time.Millisecond, P90: 4 * time.Millisecond,
			P99: 4 * time.Millisecond, Max: 4 * time.Millisecond, Mean: 2500 * time.Microsecond}},
		{"hundred", ms(hundred...), Summary{N: 100, Min: time.Millisecond, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond,
			P99: 99 * time.Millisecond, Max: 100 * time.Millisecond, Mean: 50500 * time.Microsecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Summarize(tt.samples); got != tt.want {
				t.Errorf("Summarize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSummarizeKeepsInput(t *testing.T) {
	in := ms(3, 1, 2)
	Summarize(in)
	Median(in)
	if got, want := in, ms(3, 1, 2); got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("input reordered: got %v, want %v", got, want)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(5), 5 * time.Millisecond},
		{ms(9, 1, 5), 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 2500 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{Ms(0), "0"},
		{Ms(123456 * time.Nanosecond), "0.123"},
		{Ms(6120 * time.Microsecond), "6.12"},
		{Ms(29140 * time.Microsecond), "29.1"},
		{Ratio(10*time.Millisecond, 2*time.Millisecond), "5.0x"},
		{Ratio(time.Millisecond, 0), "-"},
		{MiB(30 << 20), "30.0"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
