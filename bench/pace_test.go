package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestScheduleKeepsTheRateWithoutDrift(t *testing.T) {
	start := time.Now()
	s := newSchedule(start, 0, 200, 500*time.Millisecond) // 100 events, 5 ms apart
	if s.count != 100 || s.interval != 5*time.Millisecond {
		t.Fatalf("schedule = %+v, want 100 events 5ms apart", s)
	}
	var late time.Duration
	n, err := s.run(context.Background(), func(i int) error {
		if i%10 == 0 {
			time.Sleep(12 * time.Millisecond) // a slow send must not lower the rate
		}
		if d := time.Since(s.due(i)); d > late {
			late = d
		}
		return nil
	})
	if err != nil || n != 100 {
		t.Fatalf("run = %d, %v", n, err)
	}
	took := time.Since(start)
	if took < 495*time.Millisecond || took > 700*time.Millisecond {
		t.Errorf("100 events at 200/s took %v, want about 500ms (the timetable absorbs slow sends)", took)
	}
	if late > 200*time.Millisecond {
		t.Errorf("an event ran %v after its due time", late)
	}
}

func TestScheduleBoundsAndStops(t *testing.T) {
	if s := newSchedule(time.Now(), 0, 0, time.Second); s.count != 0 {
		t.Errorf("zero rate gives %d events", s.count)
	}
	if s := newSchedule(time.Now(), 2*time.Second, 10, time.Second); s.count != 0 {
		t.Errorf("offset past the duration gives %d events", s.count)
	}
	if s := newSchedule(time.Now(), 450*time.Millisecond, 10, time.Second); s.count != 6 {
		t.Errorf("offset 0.45s of 1s at 10/s gives %d events, want 6 (0.45 … 0.95)", s.count)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	s := newSchedule(time.Now(), 0, 100, time.Hour)
	time.AfterFunc(50*time.Millisecond, cancel)
	n, err := s.run(ctx, func(int) error { calls.Add(1); return nil })
	if err != nil || n > 10 || int64(n) != calls.Load() {
		t.Errorf("cancelled run: n=%d calls=%d err=%v", n, calls.Load(), err)
	}
	boom := errors.New("boom")
	n, err = newSchedule(time.Now(), 0, 1000, time.Second).run(context.Background(), func(i int) error {
		if i == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 3 {
		t.Errorf("failing send: n=%d err=%v", n, err)
	}
}

func TestSpreadCoversOneInterval(t *testing.T) {
	if got := spread(0, 4, 2); got != 0 {
		t.Errorf("spread(0) = %v", got)
	}
	if got := spread(2, 4, 2); got != 250*time.Millisecond {
		t.Errorf("spread(2 of 4 at 2/s) = %v, want 250ms", got)
	}
	if got := spread(3, 0, 2); got != 0 {
		t.Errorf("spread with n=0 = %v", got)
	}
}

func TestForEachStopsAtTheFirstError(t *testing.T) {
	var ran atomic.Int64
	boom := errors.New("boom")
	err := forEach(context.Background(), 1000, 4, func(ctx context.Context, i int) error {
		ran.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if ran.Load() >= 1000 {
		t.Fatalf("forEach ran all %d after an error", ran.Load())
	}
	ran.Store(0)
	if err := forEach(context.Background(), 50, 8, func(context.Context, int) error { ran.Add(1); return nil }); err != nil || ran.Load() != 50 {
		t.Fatalf("forEach = %v after %d calls", err, ran.Load())
	}
}
