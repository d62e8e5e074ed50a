package analytics

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore"
)

// SiteProfiles implements Store.
func (s *SQLiteStore) SiteProfiles(ctx context.Context) ([]SiteProfile, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT p.doc, COALESCE(f.facts_rev, 0) FROM analytics_sites p
		LEFT JOIN analytics_site_facts f ON f.site_id = p.site_id ORDER BY p.site_id`)
	if err != nil {
		return nil, fmt.Errorf("load site profiles: %w", err)
	}
	defer rows.Close()
	var out []SiteProfile
	for rows.Next() {
		var doc string
		var factsRev int64
		if err := rows.Scan(&doc, &factsRev); err != nil {
			return nil, fmt.Errorf("load site profiles: %w", err)
		}
		var p SiteProfile
		if err := json.Unmarshal([]byte(doc), &p); err != nil {
			return nil, fmt.Errorf("decode site profile: %w", err)
		}
		p.FactsRev = factsRev
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load site profiles: %w", err)
	}
	return out, nil
}

// PutSiteProfiles implements Store.
func (s *SQLiteStore) PutSiteProfiles(ctx context.Context, profiles []SiteProfile) error {
	return s.inTx(ctx, "store site profiles", func(tx *sql.Tx) error {
		for _, p := range profiles {
			p.FactsRev = 0
			doc, err := json.Marshal(p)
			if err != nil {
				return fmt.Errorf("encode site profile %s: %w", p.SiteID, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO analytics_sites (site_id, updated_at, doc) VALUES (?, ?, ?)
				ON CONFLICT(site_id) DO UPDATE SET updated_at = excluded.updated_at, doc = excluded.doc`,
				p.SiteID, p.UpdatedAt, string(doc)); err != nil {
				return fmt.Errorf("store site profile %s: %w", p.SiteID, err)
			}
		}
		return nil
	})
}

// MarkSiteFacts implements Store.
func (s *SQLiteStore) MarkSiteFacts(ctx context.Context, siteID string, rev int64) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO analytics_site_facts (site_id, facts_rev) VALUES (?, ?)
		ON CONFLICT(site_id) DO UPDATE SET facts_rev = MAX(facts_rev, excluded.facts_rev)`, siteID, rev)
	if err != nil {
		return fmt.Errorf("record facts revision of site %s: %w", siteID, err)
	}
	return nil
}

// SiteConversations implements Store.
func (s *SQLiteStore) SiteConversations(ctx context.Context, siteID, after string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT conversation_id FROM analytics_conversations
		WHERE site_id = ? AND conversation_id > ? ORDER BY conversation_id LIMIT ?`, siteID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list conversations of site %s: %w", siteID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list conversations of site %s: %w", siteID, err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// HoldEvents implements Store.
func (s *SQLiteStore) HoldEvents(ctx context.Context, events []HeldEvent) error {
	return s.inTx(ctx, "hold events", func(tx *sql.Tx) error {
		for _, h := range events {
			raw, err := h.Event.Encode()
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO analytics_held (event_id, site_id, held_at, topic, kafka_partition, kafka_offset, raw)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, h.Event.ID, h.Event.SiteID, h.HeldAt, h.Topic, h.Partition, h.Offset, string(raw)); err != nil {
				return fmt.Errorf("hold event %s: %w", h.Event.ID, err)
			}
		}
		return nil
	})
}

// HeldSites implements Store.
func (s *SQLiteStore) HeldSites(ctx context.Context) ([]HeldSite, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT site_id, MIN(held_at), COUNT(*) FROM analytics_held GROUP BY site_id ORDER BY site_id`)
	if err != nil {
		return nil, fmt.Errorf("list held sites: %w", err)
	}
	defer rows.Close()
	var out []HeldSite
	for rows.Next() {
		var h HeldSite
		if err := rows.Scan(&h.SiteID, &h.Since, &h.Count); err != nil {
			return nil, fmt.Errorf("list held sites: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// HeldEvents implements Store.
func (s *SQLiteStore) HeldEvents(ctx context.Context, siteID string) ([]HeldEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT held_at, topic, kafka_partition, kafka_offset, raw FROM analytics_held WHERE site_id = ? ORDER BY event_id`, siteID)
	if err != nil {
		return nil, fmt.Errorf("held events of site %s: %w", siteID, err)
	}
	defer rows.Close()
	var out []HeldEvent
	for rows.Next() {
		var h HeldEvent
		var raw string
		if err := rows.Scan(&h.HeldAt, &h.Topic, &h.Partition, &h.Offset, &raw); err != nil {
			return nil, fmt.Errorf("held events of site %s: %w", siteID, err)
		}
		if h.Event, err = ingest.Decode([]byte(raw)); err != nil {
			return nil, fmt.Errorf("held event of site %s: %w", siteID, err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// FinishHeld implements Store: the rows go.
func (s *SQLiteStore) FinishHeld(ctx context.Context, siteID string, ids []string, _ HeldOutcome) error {
	return s.inTx(ctx, "finish held events", func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM analytics_held WHERE site_id = ? AND event_id = ?`, siteID, id); err != nil {
				return fmt.Errorf("finish held event %s: %w", id, err)
			}
		}
		return nil
	})
}

// StaffSeen implements Store.
func (s *SQLiteStore) StaffSeen(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT staff_id FROM analytics_staff ORDER BY staff_id`)
	if err != nil {
		return nil, fmt.Errorf("load verified staff: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("load verified staff: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// AddStaffSeen implements Store.
func (s *SQLiteStore) AddStaffSeen(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	args := make([]any, 0, 2*len(ids))
	for _, id := range ids {
		args = append(args, id, now)
	}
	_, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO analytics_staff (staff_id, seen_at) VALUES `+
		strings.TrimSuffix(strings.Repeat("(?, ?), ", len(ids)), ", "), args...)
	if err != nil {
		return fmt.Errorf("record verified staff: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction.
func (s *SQLiteStore) inTx(ctx context.Context, what string, fn func(tx *sql.Tx) error) error {
	return sqlstore.InTx(ctx, s.db, what, fn)
}
