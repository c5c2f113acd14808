package lease

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestWaitClock checks the bounded wait on a fake clock (node-local limiter, default MaxWait).
func TestWaitClock(t *testing.T) {
	tests := []struct {
		name      string
		releaseAt time.Duration // when the holder releases; 0: never
		wantWait  time.Duration
		wantErr   error
	}{
		{"times out at MaxWait", 0, defaultMaxWait, ErrLimit},
		{"admitted at the release", 700 * time.Millisecond, 700 * time.Millisecond, nil},
		{"release just after the deadline", defaultMaxWait + time.Millisecond, defaultMaxWait, ErrLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := New(nil, Config{}, nil)
				defer p.Close(context.Background())
				holder := mustAcquire(t, p, "u", 1)
				if tt.releaseAt > 0 {
					time.AfterFunc(tt.releaseAt, holder.Release)
				}
				start := time.Now()
				l, err := p.Acquire(context.Background(), "u", 1, nil)
				if got := time.Since(start); got != tt.wantWait {
					t.Errorf("waited %v, want %v", got, tt.wantWait)
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if l != nil {
					l.Release()
				}
				holder.Release()
				synctest.Wait()
			})
		})
	}
}
