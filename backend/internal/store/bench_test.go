package store

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRotateRefresh measures the store's part of a refresh-token grant: one rotation after
// another in one sign-in (with p50 and p99), and rotations in many sign-ins at once.
func BenchmarkRotateRefresh(b *testing.B) {
	for _, impl := range []struct {
		name string
		open opener
	}{{"sqlite", openSQLiteTest}, {"postgres", openPostgresTest}} {
		b.Run(impl.name+"/serial", func(b *testing.B) {
			s, a := benchStore(b, impl.open)
			f := Family{ID: NewID(), AccountID: a.ID, Created: t0}
			prev := hash("serial0")
			if err := s.CreateFamily(b.Context(), f, prev); err != nil {
				b.Fatal(err)
			}
			took := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				i++
				next := hash(fmt.Sprint("serial", i))
				start := time.Now()
				if _, err := s.RotateRefresh(b.Context(), prev, next, t0); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
				prev = next
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
		b.Run(impl.name+"/parallel", func(b *testing.B) {
			s, a := benchStore(b, impl.open)
			var family atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				tag := fmt.Sprint("par", family.Add(1))
				prev := hash(tag)
				if err := s.CreateFamily(b.Context(), Family{ID: NewID(), AccountID: a.ID, Created: t0}, prev); err != nil {
					b.Error(err)
					return
				}
				for i := 0; pb.Next(); i++ {
					next := hash(fmt.Sprint(tag, "-", i))
					if _, err := s.RotateRefresh(b.Context(), prev, next, t0); err != nil {
						b.Error(err)
						return
					}
					prev = next
				}
			})
		})
	}
}

func benchStore(b *testing.B, open opener) (accountStore, Account) {
	s := open(b)
	if err := s.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	a, err := s.CreateAccount(b.Context(), Account{Email: "bench@example.com", Created: t0})
	if err != nil {
		b.Fatal(err)
	}
	return s, a
}
