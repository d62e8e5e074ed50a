package ingest

import "testing"

// Recent keeps at most two generations, and a value read from the older
// one survives the next turnover.
func TestRecentKeepsWhatIsStillRead(t *testing.T) {
	r := NewRecent[int, string](4)
	for i := 0; i < 4; i++ {
		r.Put(i, "v")
	}
	r.Put(4, "v") // turns over: 0-3 are the older generation
	if _, ok := r.Get(0); !ok {
		t.Fatal("0 is in the older generation")
	}
	for i := 5; i < 8; i++ {
		r.Put(i, "v") // the newer generation (4, 0, 5, 6, ...) fills and turns over
	}
	if _, ok := r.Get(0); !ok {
		t.Fatal("0, read before the turnover, was dropped")
	}
	if _, ok := r.Get(1); ok {
		t.Fatal("1, never read again, outlived two turnovers")
	}
	for i := 10; i < 100; i++ {
		r.Put(i, "v")
	}
	if n := r.Len(); n > 8 {
		t.Fatalf("holds %d values, want at most two generations of 4", n)
	}
}
