package analytics

import (
	"testing"
	"time"
)

// TestChunkRanges checks that report chunks cover the range without gaps
// and that every cut is the first instant of a bucket, also across DST
// changes (Berlin's fall-back repeats the 02:00 hour: no cut inside it).
func TestChunkRanges(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	from := time.Date(2024, 10, 26, 20, 0, 0, 0, time.UTC)
	for _, b := range []Bucket{BucketHour, BucketDay, BucketWeek} {
		for _, n := range []int{1, 2, 5, 24, 1000} {
			q := Query{From: from, To: from.Add(15 * 24 * time.Hour), Bucket: b, Location: berlin}
			if err := q.Validate(); err != nil {
				t.Fatal(err)
			}
			spans := zoneSpans(q.Location, q.From, q.To)
			rs := chunkRanges(q, spans, n, true)
			if len(rs) > n || len(rs) == 0 {
				t.Fatalf("%s/%d: %d chunks", b, n, len(rs))
			}
			if rs[0].from != q.From.UnixMilli() || rs[len(rs)-1].to != q.To.UnixMilli() {
				t.Fatalf("%s/%d: chunks %v do not cover the range", b, n, rs)
			}
			owner := map[int64]int{}
			for i, r := range rs {
				if r.from >= r.to || (i > 0 && r.from != rs[i-1].to) {
					t.Fatalf("%s/%d: chunk %d %v is empty or leaves a gap", b, n, i, r)
				}
				if i > 0 && bucketOf(b, spans, r.from-1) == bucketOf(b, spans, r.from) {
					t.Fatalf("%s/%d: cut %s is inside a bucket", b, n, time.UnixMilli(r.from).UTC())
				}
				// Every bucket of the range belongs to one chunk only.
				for ms := r.from; ms < r.to; ms += 15 * 60 * 1000 {
					k := bucketOf(b, spans, ms)
					if c, ok := owner[k]; ok && c != i {
						t.Fatalf("%s/%d: bucket %d in chunks %d and %d", b, n, k, c, i)
					}
					owner[k] = i
				}
			}
			if n >= 5 && b == BucketHour && len(rs) < 5 {
				t.Fatalf("%s/%d: only %d chunks", b, n, len(rs))
			}
		}
	}
	// Without buckets the range stays whole; message chunks need no alignment.
	q := Query{From: from, To: from.Add(time.Hour), Location: berlin}
	if rs := chunkRanges(q, zoneSpans(berlin, q.From, q.To), 4, true); len(rs) != 1 {
		t.Fatalf("no bucket: %v", rs)
	}
	if rs := chunkRanges(q, zoneSpans(berlin, q.From, q.To), 4, false); len(rs) != 4 {
		t.Fatalf("messages: %v", rs)
	}
}
