package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Recorder is a concurrent latency histogram with log-linear buckets:
// values below 1024 µs are exact, larger ones keep 9 significant bits
// (relative error under 0.2%). Record is lock-free and allocation-free, so
// thousands of goroutines can share one Recorder on the hot path.
type Recorder struct {
	counts [numBuckets]atomic.Int64
	n      atomic.Int64
	sum    atomic.Int64 // microseconds
	max    atomic.Int64 // microseconds
}

const (
	exactBelow = 1024 // values under this many µs get their own bucket
	subBuckets = 512  // buckets per power of two above exactBelow
	maxExp     = 40   // 2^(10+40) µs is far beyond any latency we measure
	numBuckets = exactBelow + maxExp*subBuckets
)

// Record adds one observation; negative durations count as zero.
func (r *Recorder) Record(d time.Duration) {
	us := d.Microseconds()
	if us < 0 {
		us = 0
	}
	r.counts[bucketIndex(us)].Add(1)
	r.n.Add(1)
	r.sum.Add(us)
	for {
		m := r.max.Load()
		if us <= m || r.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// bucketIndex maps microseconds to a bucket.
func bucketIndex(us int64) int {
	if us < exactBelow {
		return int(us)
	}
	e := bits.Len64(uint64(us)) - 10 // >= 1: us has 11+ bits
	if e > maxExp {
		return numBuckets - 1
	}
	mantissa := int(us >> uint(e)) // in [512, 1023]
	return exactBelow + (e-1)*subBuckets + (mantissa - subBuckets)
}

// bucketUpper is the largest value (µs) that lands in bucket i.
func bucketUpper(i int) int64 {
	if i < exactBelow {
		return int64(i)
	}
	e := (i-exactBelow)/subBuckets + 1
	mantissa := int64((i-exactBelow)%subBuckets + subBuckets)
	return (mantissa+1)<<uint(e) - 1
}

// Count is the number of observations.
func (r *Recorder) Count() int64 { return r.n.Load() }

// Max is the largest observation.
func (r *Recorder) Max() time.Duration { return time.Duration(r.max.Load()) * time.Microsecond }

// Mean is the average observation (0 when empty).
func (r *Recorder) Mean() time.Duration {
	n := r.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(r.sum.Load()/n) * time.Microsecond
}

// Quantile returns the smallest bucket bound at or below which a fraction q
// (0..1) of the observations fall, capped at the exact maximum. It reads a
// consistent-enough snapshot while recording continues.
func (r *Recorder) Quantile(q float64) time.Duration {
	n := r.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i := range r.counts {
		seen += r.counts[i].Load()
		if seen >= rank {
			up := bucketUpper(i)
			if m := r.max.Load(); up > m {
				up = m
			}
			return time.Duration(up) * time.Microsecond
		}
	}
	return r.Max()
}

// Merge adds every observation of o into r.
func (r *Recorder) Merge(o *Recorder) {
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			r.counts[i].Add(c)
		}
	}
	r.n.Add(o.n.Load())
	r.sum.Add(o.sum.Load())
	om := o.max.Load()
	for {
		m := r.max.Load()
		if om <= m || r.max.CompareAndSwap(m, om) {
			return
		}
	}
}

// Latency is a recorder's summary as reported (milliseconds).
type Latency struct {
	Count  int64   `json:"count"`
	MeanMS float64 `json:"mean_ms"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// Summary freezes the recorder's figures.
func (r *Recorder) Summary() Latency {
	return Latency{
		Count:  r.Count(),
		MeanMS: ms(r.Mean()),
		P50MS:  ms(r.Quantile(0.50)),
		P90MS:  ms(r.Quantile(0.90)),
		P99MS:  ms(r.Quantile(0.99)),
		MaxMS:  ms(r.Max()),
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000 }
