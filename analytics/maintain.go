package analytics

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleychat/parley/ingest"
)

// maintain runs the maintenance sweep every SweepEvery until ctx ends.
func (l *Loader) maintain(ctx context.Context) {
	tick := time.NewTicker(l.cfg.SweepEvery)
	defer tick.Stop()
	var failingSince, loggedAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			err := l.sweep(ctx, now)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil && (failingSince.IsZero() || now.Sub(loggedAt) >= 30*time.Second):
				// Logged when it starts failing and then every 30 s, not every sweep.
				if failingSince.IsZero() {
					failingSince = now
				}
				loggedAt = now
				l.log.Warn("analytics maintenance failed; retrying", "err", err, "failing_for", now.Sub(failingSince).Round(time.Second))
			case err == nil && !failingSince.IsZero():
				l.log.Info("analytics maintenance works again", "failed_for", now.Sub(failingSince).Round(time.Second))
				failingSince = time.Time{}
			}
		}
	}
}

// sweep releases the held events of sites that have a profile now,
// dead-letters those held longer than HoldFor, and recomputes the facts of
// sites whose profile changed (once stable for RecomputeDelay).
func (l *Loader) sweep(ctx context.Context, now time.Time) error {
	sctx, cancel := context.WithTimeout(ctx, l.cfg.StoreTimeout)
	unlock := l.lockApply()
	err := l.apply.sites.refresh(sctx, true)
	unlock()
	cancel()
	if err != nil {
		return err
	}
	held, err := l.cfg.Store.HeldSites(ctx)
	if err != nil {
		return fmt.Errorf("held sites: %w", err)
	}
	for _, h := range held {
		if _, known := l.apply.sites.profile(h.SiteID); known {
			if err := l.release(ctx, h.SiteID); err != nil {
				return err
			}
			continue
		}
		if now.Sub(time.UnixMilli(h.Since)) >= l.cfg.HoldFor {
			if err := l.deadLetterHeld(ctx, h.SiteID); err != nil {
				return err
			}
		}
	}
	return l.recompute(ctx, now)
}

// release loads a site's held events.
func (l *Loader) release(ctx context.Context, site string) error {
	sctx, cancel := context.WithTimeout(ctx, l.cfg.StoreTimeout)
	defer cancel()
	unlock := l.lockApply()
	defer unlock()
	hs, err := l.cfg.Store.HeldEvents(sctx, site)
	if err != nil {
		return fmt.Errorf("held events of site %s: %w", site, err)
	}
	events := make([]ingest.Event, len(hs))
	ids := make([]string, len(hs))
	for i, h := range hs {
		events[i], ids[i] = h.Event, h.Event.ID
	}
	if _, err := l.apply.load(sctx, events); err != nil {
		return fmt.Errorf("release held events of site %s: %w", site, err)
	}
	if err := l.cfg.Store.FinishHeld(sctx, site, ids, HeldReleased); err != nil {
		return fmt.Errorf("release held events of site %s: %w", site, err)
	}
	l.apply.sites.clearHeld(site)
	l.mu.Lock()
	l.newest = max(l.newest, l.apply.newest)
	l.mu.Unlock()
	l.log.Info("released held events: their site is known now", "site", site, "events", len(hs))
	return nil
}

// deadLetterHeld sends a site's held events to the dead-letter topic.
func (l *Loader) deadLetterHeld(ctx context.Context, site string) error {
	if l.cfg.DeadLetter == nil {
		return errors.New("no dead-letter producer")
	}
	hs, err := l.cfg.Store.HeldEvents(ctx, site)
	if err != nil {
		return fmt.Errorf("held events of site %s: %w", site, err)
	}
	if len(hs) == 0 {
		return nil
	}
	reason := fmt.Sprintf("analytics: site %q is unknown: no site.updated event for it within %s", site, l.cfg.HoldFor)
	msgs := make([]kafka.Message, 0, len(hs))
	ids := make([]string, 0, len(hs))
	for _, h := range hs {
		raw, err := h.Event.Encode()
		if err != nil {
			return err
		}
		msgs = append(msgs, kafka.Message{Topic: h.Topic, Partition: h.Partition, Offset: h.Offset, Key: []byte(h.Event.ConversationID), Value: raw})
		ids = append(ids, h.Event.ID)
	}
	if err := l.cfg.DeadLetter.DeadLetter(ctx, l.cfg.GroupID, reason, msgs...); err != nil {
		return fmt.Errorf("dead-letter held events of site %s: %w", site, err)
	}
	if err := l.cfg.Store.FinishHeld(ctx, site, ids, HeldDeadLettered); err != nil {
		return fmt.Errorf("finish dead-lettered events of site %s: %w", site, err)
	}
	l.apply.sites.clearHeld(site)
	l.rejected.Add(float64(len(ids)))
	l.log.Warn("dead-lettered the held events of an unknown site", "site", site, "events", len(ids))
	return nil
}

// recompute rebuilds the facts of every site whose profile revision is
// newer than its facts and has been so for RecomputeDelay.
func (l *Loader) recompute(ctx context.Context, now time.Time) error {
	profiles := l.apply.sites.all()
	sort.Slice(profiles, func(i, j int) bool { return profiles[i].SiteID < profiles[j].SiteID })
	for _, p := range profiles {
		if p.Rev == p.FactsRev {
			continue
		}
		l.mu.Lock()
		n, ok := l.noticed[p.SiteID]
		if !ok || n.rev != p.Rev {
			n = noticedRev{rev: p.Rev, at: now}
			l.noticed[p.SiteID] = n
		}
		l.mu.Unlock()
		if now.Sub(n.at) < l.cfg.RecomputeDelay {
			continue
		}
		l.setRecomputing(p.SiteID)
		start := time.Now()
		count, err := l.apply.recomputeSite(ctx, p.SiteID, l.lockApply, l.cfg.StoreTimeout)
		l.setRecomputing("")
		if err != nil {
			return err
		}
		l.mu.Lock()
		delete(l.noticed, p.SiteID)
		l.mu.Unlock()
		l.log.Info("recomputed the facts of a site whose hours or targets changed", "site", p.SiteID,
			"conversations", count, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (l *Loader) setRecomputing(site string) {
	l.mu.Lock()
	l.recomputing = site
	l.mu.Unlock()
}
