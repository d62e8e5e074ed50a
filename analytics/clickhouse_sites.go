package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parleychat/parley/ingest"
)

// SiteProfiles implements Store.
func (s *ClickHouseStore) SiteProfiles(ctx context.Context) ([]SiteProfile, error) {
	rows, err := s.conn.Query(ctx, `SELECT doc FROM site_profiles FINAL ORDER BY site_id`)
	if err != nil {
		return nil, unavailable("site profiles", err)
	}
	defer rows.Close()
	var out []SiteProfile
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("scan site profile: %w", err)
		}
		var p SiteProfile
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			return nil, fmt.Errorf("decode site profile: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("site profiles", err)
	}
	revs := map[string]int64{}
	frows, err := s.conn.Query(ctx, `SELECT site_id, max(facts_rev) FROM site_facts GROUP BY site_id`)
	if err != nil {
		return nil, unavailable("site facts revisions", err)
	}
	defer frows.Close()
	for frows.Next() {
		var site string
		var rev uint64
		if err := frows.Scan(&site, &rev); err != nil {
			return nil, fmt.Errorf("scan site facts revision: %w", err)
		}
		revs[site] = int64(rev)
	}
	if err := frows.Err(); err != nil {
		return nil, unavailable("site facts revisions", err)
	}
	for i := range out {
		out[i].FactsRev = revs[out[i].SiteID]
	}
	return out, nil
}

// PutSiteProfiles implements Store: version is the event's occurred_at,
// so the newest state wins a merge whatever the insert order.
func (s *ClickHouseStore) PutSiteProfiles(ctx context.Context, profiles []SiteProfile) error {
	if len(profiles) == 0 {
		return nil
	}
	batch, err := s.prepareBatch(ctx, `INSERT INTO site_profiles (site_id, version, doc)`)
	if err != nil {
		return unavailable("prepare site profile insert", err)
	}
	for _, p := range profiles {
		p.FactsRev = 0
		doc, err := json.Marshal(p)
		if err != nil {
			batch.Abort()
			return fmt.Errorf("encode site profile %s: %w", p.SiteID, err)
		}
		if err := batch.Append(p.SiteID, uint64(max(p.UpdatedAt, 0)), string(doc)); err != nil {
			batch.Abort()
			return fmt.Errorf("append site profile %s: %w", p.SiteID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return unavailable(fmt.Sprintf("insert %d site profiles", len(profiles)), err)
	}
	return nil
}

// MarkSiteFacts implements Store.
func (s *ClickHouseStore) MarkSiteFacts(ctx context.Context, siteID string, rev int64) error {
	batch, err := s.prepareBatch(ctx, `INSERT INTO site_facts (site_id, facts_rev)`)
	if err != nil {
		return unavailable("prepare site facts insert", err)
	}
	if err := batch.Append(siteID, uint64(max(rev, 0))); err != nil {
		batch.Abort()
		return fmt.Errorf("append site facts revision: %w", err)
	}
	if err := batch.Send(); err != nil {
		return unavailable("insert site facts revision", err)
	}
	return nil
}

// SiteConversations implements Store (the facts table is ordered by site
// and conversation, so this reads one key range).
func (s *ClickHouseStore) SiteConversations(ctx context.Context, siteID, after string, limit int) ([]string, error) {
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT conversation_id FROM conversation_facts
		WHERE site_id = ? AND conversation_id > ? ORDER BY conversation_id LIMIT ?`, siteID, after, limit)
	if err != nil {
		return nil, unavailable("site conversations", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan site conversation: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("site conversations", err)
	}
	return out, nil
}

// HoldEvents implements Store.
func (s *ClickHouseStore) HoldEvents(ctx context.Context, events []HeldEvent) error {
	if len(events) == 0 {
		return nil
	}
	batch, err := s.prepareBatch(ctx, `INSERT INTO held_events
		(site_id, event_id, version, state, held_at, topic, kafka_partition, kafka_offset, raw)`)
	if err != nil {
		return unavailable("prepare held insert", err)
	}
	for _, h := range events {
		raw, err := h.Event.Encode()
		if err != nil {
			batch.Abort()
			return err
		}
		if err := batch.Append(h.Event.SiteID, h.Event.ID, uint8(0), uint8(0), h.HeldAt, h.Topic, int32(h.Partition), h.Offset, string(raw)); err != nil {
			batch.Abort()
			return fmt.Errorf("append held event %s: %w", h.Event.ID, err)
		}
	}
	if err := batch.Send(); err != nil {
		return unavailable(fmt.Sprintf("hold %d events", len(events)), err)
	}
	return nil
}

// HeldSites implements Store.
func (s *ClickHouseStore) HeldSites(ctx context.Context) ([]HeldSite, error) {
	rows, err := s.conn.Query(ctx, `SELECT site_id, min(held_at), count() FROM held_events FINAL
		WHERE state = 0 GROUP BY site_id ORDER BY site_id`)
	if err != nil {
		return nil, unavailable("held sites", err)
	}
	defer rows.Close()
	var out []HeldSite
	for rows.Next() {
		var h HeldSite
		var n uint64
		if err := rows.Scan(&h.SiteID, &h.Since, &n); err != nil {
			return nil, fmt.Errorf("scan held site: %w", err)
		}
		h.Count = int64(n)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("held sites", err)
	}
	return out, nil
}

// HeldEvents implements Store.
func (s *ClickHouseStore) HeldEvents(ctx context.Context, siteID string) ([]HeldEvent, error) {
	rows, err := s.conn.Query(ctx, `SELECT held_at, topic, kafka_partition, kafka_offset, raw FROM held_events FINAL
		PREWHERE site_id = ? WHERE state = 0 ORDER BY event_id`, siteID)
	if err != nil {
		return nil, unavailable("held events", err)
	}
	defer rows.Close()
	var out []HeldEvent
	for rows.Next() {
		var h HeldEvent
		var part int32
		var raw string
		if err := rows.Scan(&h.HeldAt, &h.Topic, &part, &h.Offset, &raw); err != nil {
			return nil, fmt.Errorf("scan held event: %w", err)
		}
		h.Partition = int(part)
		if h.Event, err = ingest.Decode([]byte(raw)); err != nil {
			return nil, fmt.Errorf("held event of site %s: %w", siteID, err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("held events", err)
	}
	return out, nil
}

// FinishHeld implements Store: a row of version 1 with the outcome
// replaces the held one.
func (s *ClickHouseStore) FinishHeld(ctx context.Context, siteID string, ids []string, outcome HeldOutcome) error {
	if len(ids) == 0 {
		return nil
	}
	batch, err := s.prepareBatch(ctx, `INSERT INTO held_events (site_id, event_id, version, state, held_at, topic, kafka_partition, kafka_offset, raw)`)
	if err != nil {
		return unavailable("prepare held finish", err)
	}
	now := time.Now().UnixMilli()
	for _, id := range ids {
		if err := batch.Append(siteID, id, uint8(1), uint8(outcome), now, "", int32(0), int64(0), ""); err != nil {
			batch.Abort()
			return fmt.Errorf("append held finish %s: %w", id, err)
		}
	}
	if err := batch.Send(); err != nil {
		return unavailable(fmt.Sprintf("finish %d held events", len(ids)), err)
	}
	return nil
}

// StaffSeen implements Store.
func (s *ClickHouseStore) StaffSeen(ctx context.Context) ([]string, error) {
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT staff_id FROM staff_seen ORDER BY staff_id`)
	if err != nil {
		return nil, unavailable("verified staff", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("scan verified staff: %w", err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable("verified staff", err)
	}
	return out, nil
}

// AddStaffSeen implements Store.
func (s *ClickHouseStore) AddStaffSeen(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	batch, err := s.prepareBatch(ctx, `INSERT INTO staff_seen (staff_id, seen_at)`)
	if err != nil {
		return unavailable("prepare staff insert", err)
	}
	now := time.Now().UnixMilli()
	for _, id := range ids {
		if err := batch.Append(id, now); err != nil {
			batch.Abort()
			return fmt.Errorf("append verified staff %s: %w", id, err)
		}
	}
	if err := batch.Send(); err != nil {
		return unavailable("insert verified staff", err)
	}
	return nil
}
