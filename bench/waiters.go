package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// waiters lets a setup step wait for the frame that answers it (by ref,
// or by a fixed key such as "hello") while the socket's reader goroutine
// delivers frames.
type waiters struct {
	mu sync.Mutex
	m  map[string]chan frame
}

// expect registers interest in key before the request is sent.
func (w *waiters) expect(key string) chan frame {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]chan frame{}
	}
	ch := make(chan frame, 8)
	w.m[key] = ch
	return ch
}

// deliver hands f to whoever expects key; it never blocks the reader.
func (w *waiters) deliver(key string, f frame) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.m[key]
	if !ok {
		return false
	}
	select {
	case ch <- f:
	default:
	}
	return true
}

func (w *waiters) forget(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.m, key)
}

// await waits for a frame on ch that satisfies done; an error frame fails
// the wait with the server's message, as does the socket closing.
func await(ctx context.Context, ch chan frame, closed <-chan struct{}, timeout time.Duration, what string, done func(frame) bool) (frame, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case f := <-ch:
			if f.Type == "error" {
				return f, fmt.Errorf("%s: server answered %s: %s", what, f.Code, f.errorText())
			}
			if done(f) {
				return f, nil
			}
		case <-closed:
			return frame{}, fmt.Errorf("%s: socket closed", what)
		case <-t.C:
			return frame{}, fmt.Errorf("%s: no answer within %s", what, timeout)
		case <-ctx.Done():
			return frame{}, ctx.Err()
		}
	}
}
