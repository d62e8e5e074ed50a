package bench

import (
	"context"
	"time"
)

// schedule is a fixed-rate timetable: event i is due at start + offset +
// i*interval, for i < count. Keeping an absolute timetable (instead of
// sleeping interval after each send) means a slow send does not lower the
// rate: the loop catches up, and the rate over the run is what was asked.
type schedule struct {
	start    time.Time
	offset   time.Duration
	interval time.Duration
	count    int
}

// newSchedule builds the timetable of one sender: rate events per second
// for duration, starting at start+offset. A rate of zero or less yields no
// events.
func newSchedule(start time.Time, offset time.Duration, rate float64, duration time.Duration) schedule {
	if rate <= 0 || duration <= 0 {
		return schedule{start: start}
	}
	interval := time.Duration(float64(time.Second) / rate)
	count := 0
	if offset < duration {
		// Every i with offset + i*interval < duration.
		count = int((duration - offset + interval - 1) / interval)
	}
	return schedule{start: start, offset: offset, interval: interval, count: count}
}

// due is when event i is due.
func (s schedule) due(i int) time.Time {
	return s.start.Add(s.offset + time.Duration(i)*s.interval)
}

// run calls send for every event of the timetable at its due time, stopping
// early when ctx ends or send fails. It returns how many events it sent.
func (s schedule) run(ctx context.Context, send func(i int) error) (int, error) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 0; i < s.count; i++ {
		if wait := time.Until(s.due(i)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return i, nil
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return i, nil
		}
		if err := send(i); err != nil {
			return i, err
		}
	}
	return s.count, nil
}

// spread returns the start offset of sender i of n, spreading n senders
// evenly over one interval so that they do not all fire together.
func spread(i, n int, rate float64) time.Duration {
	if n <= 0 || rate <= 0 {
		return 0
	}
	interval := float64(time.Second) / rate
	return time.Duration(interval * float64(i) / float64(n))
}
