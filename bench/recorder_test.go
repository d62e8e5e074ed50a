package bench

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestRecorderQuantilesMatchExactWithinBucketError(t *testing.T) {
	var r Recorder
	rng := rand.New(rand.NewPCG(1, 2))
	var exact []time.Duration
	for i := 0; i < 100_000; i++ {
		// Log-normal-ish spread from microseconds to seconds.
		d := time.Duration(rng.ExpFloat64() * float64(time.Duration(1+rng.IntN(3000))*time.Microsecond))
		d = d.Truncate(time.Microsecond)
		exact = append(exact, d)
		r.Record(d)
	}
	slices.Sort(exact)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := exact[int(q*float64(len(exact)))-1]
		got := r.Quantile(q)
		if got < want || float64(got-want) > 0.002*float64(want)+float64(time.Microsecond) {
			t.Errorf("q%.3f = %v, exact %v: outside the 0.2%% bucket error", q, got, want)
		}
	}
	if r.Max() != exact[len(exact)-1] {
		t.Errorf("max = %v, want %v", r.Max(), exact[len(exact)-1])
	}
	if r.Count() != int64(len(exact)) {
		t.Errorf("count = %d", r.Count())
	}
}

func TestRecorderSmallAndEdgeValues(t *testing.T) {
	var r Recorder
	if r.Quantile(0.99) != 0 || r.Mean() != 0 || r.Summary().Count != 0 {
		t.Fatal("empty recorder must report zeros")
	}
	for _, d := range []time.Duration{-5 * time.Millisecond, 0, time.Microsecond, 1023 * time.Microsecond, 1024 * time.Microsecond, 100 * 24 * time.Hour} {
		r.Record(d)
	}
	if got := r.Quantile(0); got != 0 {
		t.Errorf("q0 = %v, want 0 (negative clamps to 0)", got)
	}
	if got := r.Quantile(3.0 / 6); got != time.Microsecond {
		t.Errorf("q0.5 = %v, want 1µs (exact below 1024µs)", got)
	}
	if got := r.Max(); got != 100*24*time.Hour {
		t.Errorf("max = %v", got)
	}
	if got := r.Quantile(1); got != r.Max() {
		t.Errorf("q1 = %v, want max %v", got, r.Max())
	}
	// Bucket bounds are contiguous and increasing.
	for i := 1; i < numBuckets; i++ {
		if bucketUpper(i) <= bucketUpper(i-1) {
			t.Fatalf("bucket %d upper %d not above bucket %d upper %d", i, bucketUpper(i), i-1, bucketUpper(i-1))
		}
		if v := bucketUpper(i-1) + 1; bucketIndex(v) != i && i < numBuckets-1 {
			t.Fatalf("value %d lands in bucket %d, want %d", v, bucketIndex(v), i)
		}
	}
}

func TestRecorderConcurrentRecordAndMerge(t *testing.T) {
	var a, b Recorder
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10_000; i++ {
				a.Record(time.Duration(i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	b.Record(time.Hour)
	b.Merge(&a)
	if b.Count() != 80_001 {
		t.Fatalf("count = %d, want 80001", b.Count())
	}
	if b.Max() != time.Hour {
		t.Fatalf("max = %v", b.Max())
	}
	if p50 := a.Quantile(0.5); p50 < 4990*time.Microsecond || p50 > 5010*time.Microsecond {
		t.Fatalf("p50 = %v, want about 5ms", p50)
	}
	s := a.Summary()
	if s.MaxMS != 9.999 || s.Count != 80_000 || s.P99MS < 9.8 {
		t.Fatalf("summary = %+v", s)
	}
}

func BenchmarkRecorderRecord(b *testing.B) {
	var r Recorder
	d := 1234 * time.Microsecond
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r.Record(d + time.Duration(i&1023)*time.Microsecond)
	}
}

func BenchmarkRecorderRecordParallel(b *testing.B) {
	var r Recorder
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Record(time.Duration(i&8191) * time.Microsecond)
			i++
		}
	})
}

func BenchmarkRecorderQuantile(b *testing.B) {
	var r Recorder
	for i := 0; i < 100_000; i++ {
		r.Record(time.Duration(i) * time.Microsecond)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = r.Quantile(0.99)
	}
}
