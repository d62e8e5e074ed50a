package moderation

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

const sqliteLabelColumns = `item_id, site_id, text, label, decision, action, categories, sources, decided_by, decided_at`

func (s *sqliteStore) Labels(ctx context.Context, f LabelFilter) ([]DecisionLabel, error) {
	where, args := []string{"1 = 1"}, []any{}
	if f.SiteID != "" {
		where, args = append(where, "site_id = ?"), append(args, f.SiteID)
	}
	if f.Sites != nil {
		where, args = sqliteSiteIn(where, args, "site_id", f.Sites)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "decided_at >= ?"), append(args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "decided_at < ?"), append(args, ms(f.Until))
	}
	if !f.AfterAt.IsZero() {
		where, args = append(where, "(decided_at > ? OR (decided_at = ? AND item_id > ?))"), append(args, ms(f.AfterAt), ms(f.AfterAt), f.AfterID)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqliteLabelColumns+` FROM mod_labels WHERE `+strings.Join(where, " AND ")+`
		ORDER BY decided_at, item_id LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("list labels: %w", err)
	}
	defer rows.Close()
	out := []DecisionLabel{}
	for rows.Next() {
		var l DecisionLabel
		var cats, sources string
		var at int64
		if err := rows.Scan(&l.ItemID, &l.SiteID, &l.Text, &l.Label, &l.Decision, &l.Action, &cats, &sources, &l.DecidedBy, &at); err != nil {
			return nil, fmt.Errorf("list labels: %w", err)
		}
		if err := json.Unmarshal([]byte(cats), &l.Categories); err != nil {
			return nil, fmt.Errorf("label of %s categories: %w", l.ItemID, err)
		}
		if err := json.Unmarshal([]byte(sources), &l.Sources); err != nil {
			return nil, fmt.Errorf("label of %s sources: %w", l.ItemID, err)
		}
		l.DecidedAt = fromMS(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// LabelCounts groups in SQL: json_each unrolls the categories and
// sources of each label.
func (s *sqliteStore) LabelCounts(ctx context.Context, f LabelCountFilter) ([]LabelCount, error) {
	conds, args := []string{"l.decided_at >= ?"}, []any{ms(f.Since)}
	if f.SiteID != "" {
		conds, args = append(conds, "l.site_id = ?"), append(args, f.SiteID)
	}
	if f.Sites != nil {
		conds, args = sqliteSiteIn(conds, args, "l.site_id", f.Sites)
	}
	where := strings.Join(conds, " AND ")
	counts := `SUM(l.decision = 'approve'), SUM(l.decision != 'approve')`
	q := `SELECT l.site_id, '` + CountAll + `', '', ` + counts + ` FROM mod_labels l WHERE ` + where + ` GROUP BY l.site_id
		UNION ALL SELECT l.site_id, '` + CountCategory + `', j.value, ` + counts + ` FROM mod_labels l, json_each(l.categories) j
		WHERE ` + where + ` GROUP BY l.site_id, j.value
		UNION ALL SELECT l.site_id, '` + CountSource + `', j.value, ` + counts + ` FROM mod_labels l, json_each(l.sources) j
		WHERE ` + where + ` GROUP BY l.site_id, j.value
		ORDER BY 1, 2, 3`
	rows, err := s.db.QueryContext(ctx, q, append(append(append([]any{}, args...), args...), args...)...)
	if err != nil {
		return nil, fmt.Errorf("count labels: %w", err)
	}
	defer rows.Close()
	return scanLabelCounts(rows)
}

// nonNil returns s, or an empty slice for nil, so it is stored as [] and
// not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
