package moderation

import (
	"context"
	"fmt"
)

const pgLabelColumns = sqliteLabelColumns

func (s *postgresStore) Labels(ctx context.Context, f LabelFilter) ([]DecisionLabel, error) {
	var w pgWhere
	w.add("TRUE")
	if f.SiteID != "" {
		w.add("site_id = " + w.arg(f.SiteID))
	}
	if f.Sites != nil {
		w.add("site_id = ANY(" + w.arg(f.Sites) + "::TEXT[])")
	}
	if !f.Since.IsZero() {
		w.add("decided_at >= " + w.arg(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("decided_at < " + w.arg(f.Until))
	}
	if !f.AfterAt.IsZero() {
		w.add("(decided_at, item_id) > (" + w.arg(f.AfterAt) + ", " + w.arg(f.AfterID) + ")")
	}
	rows, err := pgQuery(ctx, s.db, `SELECT `+pgLabelColumns+` FROM mod_labels WHERE `+w.String()+`
		ORDER BY decided_at, item_id LIMIT `+w.arg(f.Limit), w.args...)
	if err != nil {
		return nil, fmt.Errorf("list labels: %w", err)
	}
	defer rows.Close()
	out := []DecisionLabel{}
	for rows.Next() {
		var l DecisionLabel
		if err := rows.Scan(&l.ItemID, &l.SiteID, &l.Text, &l.Label, &l.Decision, &l.Action, &l.Categories, &l.Sources, &l.DecidedBy, &l.DecidedAt); err != nil {
			return nil, fmt.Errorf("list labels: %w", err)
		}
		l.DecidedAt = l.DecidedAt.UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}

// LabelCounts groups in SQL: GROUPING SETS over the categories and
// sources unnested from each label.
func (s *postgresStore) LabelCounts(ctx context.Context, f LabelCountFilter) ([]LabelCount, error) {
	var w pgWhere
	w.add("l.decided_at >= " + w.arg(f.Since))
	if f.SiteID != "" {
		w.add("l.site_id = " + w.arg(f.SiteID))
	}
	if f.Sites != nil {
		w.add("l.site_id = ANY(" + w.arg(f.Sites) + "::TEXT[])")
	}
	counts := `count(*) FILTER (WHERE l.decision = 'approve'), count(*) FILTER (WHERE l.decision <> 'approve')`
	rows, err := pgQuery(ctx, s.db, `SELECT l.site_id, '`+CountAll+`', '', `+counts+` FROM mod_labels l WHERE `+w.String()+` GROUP BY l.site_id
		UNION ALL SELECT l.site_id, '`+CountCategory+`', c, `+counts+` FROM mod_labels l CROSS JOIN LATERAL unnest(l.categories) AS c
		WHERE `+w.String()+` GROUP BY l.site_id, c
		UNION ALL SELECT l.site_id, '`+CountSource+`', src, `+counts+` FROM mod_labels l CROSS JOIN LATERAL unnest(l.sources) AS src
		WHERE `+w.String()+` GROUP BY l.site_id, src
		ORDER BY 1, 2, 3`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("count labels: %w", err)
	}
	defer rows.Close()
	return scanLabelCounts(rows)
}
