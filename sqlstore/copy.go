package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// TableCopy describes how one SQLite table moves into its PostgreSQL
// counterpart (same name, same columns, in the domain's schema).
type TableCopy struct {
	Table string
	// Columns are copied in this order; Key is the primary key's columns,
	// a prefix of the copy order's sort, and the conflict target that makes
	// a second run skip rows already copied.
	Columns []string
	Key     []string
	// Convert turns one SQLite row into the PostgreSQL row (types that
	// differ: 0/1 to booleans, RFC 3339 text to timestamps, JSON to arrays).
	// nil copies values as they are.
	Convert func(row []any) ([]any, error)
	// Serial names a BIGSERIAL or identity column whose sequence must
	// continue after the copied values; Identity says it is GENERATED
	// ALWAYS, so the copied values need OVERRIDING SYSTEM VALUE.
	Serial   string
	Identity bool
	// Rename maps a SQLite column to its PostgreSQL name when they differ.
	Rename map[string]string
	// Derived names PostgreSQL columns SQLite does not have, whose values
	// Convert appends to each row, in this order, after the copied ones.
	Derived []string
}

// targetColumns returns the PostgreSQL column names of the copied columns.
func (tc TableCopy) targetColumns() []string {
	out := make([]string, len(tc.Columns))
	for i, c := range tc.Columns {
		out[i] = c
		if r, ok := tc.Rename[c]; ok {
			out[i] = r
		}
	}
	return append(out, tc.Derived...)
}

// CopyProgress is told, after each batch, how many rows of a table are copied.
type CopyProgress func(table string, copied, total int64)

// copyBatch is how many rows one INSERT carries.
const copyBatch = 500

// CopySQLiteToPostgres copies tables in order from src into dst's schema.
// It is idempotent and so resumable: rows whose key is already in dst are
// skipped (ON CONFLICT DO NOTHING), so running it again after an
// interruption copies what is missing. It returns, per table, the row counts of both sides after
// the copy, which the caller checks.
func CopySQLiteToPostgres(ctx context.Context, src *sql.DB, dst *pgxpool.Pool, schema string, tables []TableCopy, progress CopyProgress) (map[string][2]int64, error) {
	counts := map[string][2]int64{}
	for _, tc := range tables {
		var total int64
		if err := src.QueryRowContext(ctx, `SELECT count(*) FROM `+tc.Table).Scan(&total); err != nil {
			return counts, fmt.Errorf("count %s: %w", tc.Table, err)
		}
		if err := copyTable(ctx, src, dst, schema, tc, total, progress); err != nil {
			return counts, fmt.Errorf("copy %s.%s: %w", schema, tc.Table, err)
		}
		var copied int64
		if err := dst.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, tc.Table}.Sanitize()).Scan(&copied); err != nil {
			return counts, fmt.Errorf("count %s.%s: %w", schema, tc.Table, err)
		}
		counts[tc.Table] = [2]int64{total, copied}
		if tc.Serial != "" {
			q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%s', '%s'), GREATEST((SELECT COALESCE(max(%s), 0) FROM %s), 1))`,
				schema+"."+tc.Table, tc.Serial, tc.Serial, pgx.Identifier{schema, tc.Table}.Sanitize())
			if _, err := dst.Exec(ctx, q); err != nil {
				return counts, fmt.Errorf("continue %s.%s's sequence: %w", schema, tc.Table, err)
			}
		}
	}
	return counts, nil
}

func copyTable(ctx context.Context, src *sql.DB, dst *pgxpool.Pool, schema string, tc TableCopy, total int64, progress CopyProgress) error {
	cols := strings.Join(tc.Columns, ", ")
	key := strings.Join(tc.Key, ", ")
	target := pgx.Identifier{schema, tc.Table}.Sanitize()
	keyIdx := make([]int, len(tc.Key))
	for i, k := range tc.Key {
		if keyIdx[i] = indexOf(tc.Columns, k); keyIdx[i] < 0 {
			return fmt.Errorf("key column %s is not copied", k)
		}
	}
	// Pages go in the source's key order; a second run reads them again
	// and inserts only what is missing, so an interrupted copy resumes by
	// running it again.
	var last []any
	var copied int64
	for {
		q := `SELECT ` + cols + ` FROM ` + tc.Table
		var args []any
		if last != nil {
			q += ` WHERE (` + key + `) > (` + strings.TrimSuffix(strings.Repeat("?, ", len(tc.Key)), ", ") + `)`
			args = append(args, last...)
		}
		q += ` ORDER BY ` + key + fmt.Sprintf(` LIMIT %d`, copyBatch)
		rows, err := src.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		var batch [][]any
		for rows.Next() {
			vals := make([]any, len(tc.Columns))
			ptrs := make([]any, len(vals))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return fmt.Errorf("read: %w", err)
			}
			batch = append(batch, vals)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		last = make([]any, len(keyIdx))
		for i, j := range keyIdx {
			last[i] = batch[len(batch)-1][j]
		}
		if err := insertBatch(ctx, dst, target, tc, batch); err != nil {
			return err
		}
		copied += int64(len(batch))
		if progress != nil {
			progress(tc.Table, min(copied, total), total)
		}
		if len(batch) < copyBatch {
			return nil
		}
	}
}

func insertBatch(ctx context.Context, dst *pgxpool.Pool, target string, tc TableCopy, batch [][]any) error {
	var b strings.Builder
	b.WriteString(`INSERT INTO ` + target + ` (` + strings.Join(tc.targetColumns(), ", ") + `) `)
	if tc.Identity {
		b.WriteString(`OVERRIDING SYSTEM VALUE `)
	}
	b.WriteString(`VALUES `)
	args := make([]any, 0, len(batch)*len(tc.Columns))
	for r, row := range batch {
		if tc.Convert != nil {
			var err error
			if row, err = tc.Convert(row); err != nil {
				return fmt.Errorf("convert row: %w", err)
			}
		}
		if want := len(tc.Columns) + len(tc.Derived); len(row) != want {
			return fmt.Errorf("convert row: %d values for %d columns", len(row), want)
		}
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for i, v := range row {
			if i > 0 {
				b.WriteString(", ")
			}
			args = append(args, v)
			fmt.Fprintf(&b, "$%d", len(args))
		}
		b.WriteByte(')')
	}
	b.WriteString(` ON CONFLICT DO NOTHING`)
	if _, err := dst.Exec(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("write: %w", describePgError(err))
	}
	return nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// IntBool turns SQLite's 0/1 into a boolean (nil stays nil).
func IntBool(v any) any {
	switch x := v.(type) {
	case int64:
		return x != 0
	case bool:
		return x
	}
	return v
}

// MillisTime turns SQLite's Unix milliseconds into a time; with nullIfZero
// a 0 (SQLite's "not set") becomes NULL.
func MillisTime(v any, nullIfZero bool) any {
	ms, ok := v.(int64)
	if !ok {
		return v
	}
	if ms == 0 && nullIfZero {
		return nil
	}
	return time.UnixMilli(ms).UTC()
}
