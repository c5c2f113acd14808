package bench

import (
	"os"
	"testing"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    Memory
		wantErr bool
	}{
		{"both", "Name:\tx\nVmPeak:\t  9 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t4\n", Memory{RSS: 1 << 20, HWM: 2 << 20}, false},
		{"missing", "Name:\tx\nVmRSS:\t 1 kB\n", Memory{}, true},
		{"bad unit", "VmHWM:\t1 MB\nVmRSS:\t1 kB\n", Memory{}, true},
		{"bad number", "VmHWM:\tx kB\nVmRSS:\t1 kB\n", Memory{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tt.status))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadMemorySelf(t *testing.T) {
	m, err := GroupMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS {
		t.Errorf("own memory %+v: want 0 < RSS <= HWM", m)
	}
}

func TestParseSchedstat(t *testing.T) {
	tests := []struct {
		in      string
		want    Sched
		wantErr bool
	}{
		{"4035546 10362888 2\n", Sched{OnCPU: 4035546, Wait: 10362888}, false},
		{"1\n", Sched{}, true},
		{"x 1 2\n", Sched{}, true},
	}
	for _, tt := range tests {
		got, err := parseSchedstat([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseSchedstat(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestReadSchedSelf(t *testing.T) {
	s, err := ReadSched(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.OnCPU <= 0 {
		t.Errorf("own CPU time %v, want > 0", s.OnCPU)
	}
}
