package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// dispatch claims due deliveries and sends them, at most Concurrency at
// once, until ctx ends; deliveries in flight then finish.
func (s *Service) dispatch(ctx context.Context) {
	slots := make(chan struct{}, s.cfg.Concurrency)
	freed := make(chan struct{}, s.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	poll := time.NewTimer(0)
	defer poll.Stop()
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	lease := s.cfg.Timeout + 30*time.Second
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-freed:
		case <-poll.C:
		case now := <-purge.C:
			if _, err := s.store.PurgeDone(ctx, now.Add(-7*24*time.Hour), now.Add(-30*24*time.Hour)); err != nil && ctx.Err() == nil {
				s.log.Warn("purge webhook deliveries", "err", err)
			}
			continue
		}
		for ctx.Err() == nil {
			free := s.cfg.Concurrency - len(slots)
			if free == 0 {
				break
			}
			ds, err := s.store.ClaimDue(ctx, time.Now(), lease, free)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("claim webhook deliveries", "err", err, "backoff", backoff)
					select {
					case <-ctx.Done():
					case <-time.After(backoff):
					}
					backoff = min(backoff*2, 5*time.Second)
				}
				break
			}
			backoff = 100 * time.Millisecond
			for _, d := range ds {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.attempt(context.WithoutCancel(ctx), d)
					<-slots
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
			}
			if len(ds) < free {
				break
			}
		}
		poll.Reset(s.cfg.Poll)
	}
}

// attempt sends one delivery and records the outcome.
func (s *Service) attempt(ctx context.Context, d Delivery) {
	start := time.Now()
	ep, err := s.endpoint(ctx, d.EndpointID)
	if errors.Is(err, ErrNotFound) {
		return // the endpoint was deleted, its deliveries with it
	}
	var code int
	switch {
	case err != nil:
		err = fmt.Errorf("read endpoint: %w", err)
	case !ep.Enabled:
		err = errors.New("endpoint disabled; deliveries wait until it is enabled again")
	default:
		code, err = s.post(ctx, ep, d.ID, d.EventID, d.EventType, d.Body)
	}
	s.latency.Observe(time.Since(start).Seconds())
	now := time.Now()
	a := Attempt{At: now, Code: code, Status: StatusDelivered}
	if err != nil {
		a.Error = err.Error()
		if now.Sub(d.CreatedAt) >= s.cfg.Retry.GiveUpAfter {
			a.Status = StatusDead
		} else {
			wait := s.cfg.Retry.after(d.Attempts + 1)
			wait += time.Duration(rand.Int64N(int64(wait)/10 + 1)) // spread retries of many lanes
			a.Status, a.Next = StatusPending, now.Add(wait)
		}
	}
	outcome := map[string]string{StatusDelivered: "delivered", StatusPending: "retry", StatusDead: "dead"}[a.Status]
	s.outcomes.WithLabelValues(outcome).Inc()
	if a.Status == StatusDead {
		s.log.Warn("webhook delivery dead-lettered", "delivery", d.ID, "endpoint", d.EndpointID, "event", d.EventID, "attempts", d.Attempts+1, "err", a.Error)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.store.RecordAttempt(rctx, d.ID, a); err != nil && !errors.Is(err, ErrNotFound) {
		// The lease runs out and the delivery is tried again: at least once.
		s.log.Error("record webhook attempt", "delivery", d.ID, "err", err)
	}
}

// post sends body to the endpoint, signed; a 2xx answer is success.
func (s *Service) post(ctx context.Context, ep Endpoint, deliveryID, eventID, eventType string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Parley-Webhooks/1")
	req.Header.Set(HeaderSignature, Sign(ep.Secret, time.Now(), body))
	req.Header.Set(HeaderEventID, eventID)
	req.Header.Set(HeaderEventType, eventType)
	req.Header.Set(HeaderDelivery, deliveryID)
	res, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20)) // let the connection be reused
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, fmt.Errorf("HTTP %d: %s", res.StatusCode, printable(snippet))
	}
	return res.StatusCode, nil
}

// printable keeps the start of a response body readable in the admin UI.
func printable(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 && r != ' ' {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > 200 {
		s = string([]rune(s)[:200]) + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
