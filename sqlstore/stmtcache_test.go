package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// keptStatements is how many statements the connection of db keeps.
func keptStatements(t testing.TB, db *sql.DB) int {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := -1
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stmtCacheConn)
		if !ok {
			return fmt.Errorf("connection is %T, not a statement-keeping one", dc)
		}
		c.mu.Lock()
		n = len(c.stmts)
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The connection prepares a statement once and runs it again for the same
// text; two open row sets of one text each get a statement; a statement
// kept across a schema change sees the new schema.
func TestStatementsAreKeptAndShared(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	before := keptStatements(t, db)
	for i := range 100 {
		if _, err := db.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := keptStatements(t, db) - before; got != 1 {
		t.Fatalf("100 inserts of one text kept %d statements, want 1", got)
	}

	// The same query nested in itself, in one transaction (one connection).
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	const q = `SELECT id, v FROM t WHERE id <= ? ORDER BY id`
	outer, err := tx.QueryContext(ctx, q, 3)
	if err != nil {
		t.Fatal(err)
	}
	pairs := 0
	for outer.Next() {
		var id int
		var v string
		if err := outer.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		inner, err := tx.QueryContext(ctx, q, 2)
		if err != nil {
			t.Fatal(err)
		}
		for inner.Next() {
			pairs++
		}
		if err := inner.Err(); err != nil {
			t.Fatal(err)
		}
		inner.Close()
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	outer.Close()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if pairs != 6 {
		t.Fatalf("nested queries gave %d pairs, want 3×2", pairs)
	}

	// A kept statement after the table changed.
	const all = `SELECT * FROM t WHERE id = 1`
	var id int
	var v string
	if err := db.QueryRowContext(ctx, all).Scan(&id, &v); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE t ADD COLUMN w TEXT NOT NULL DEFAULT 'new'`); err != nil {
		t.Fatal(err)
	}
	var w string
	if err := db.QueryRowContext(ctx, all).Scan(&id, &v, &w); err != nil || w != "new" {
		t.Fatalf("after ALTER TABLE: w = %q, %v", w, err)
	}
	// A failing statement is reported and the connection goes on.
	if _, err := db.ExecContext(ctx, `INSERT INTO t (id, v) VALUES (1, 'dup')`); err == nil {
		t.Fatal("duplicate primary key accepted")
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, "after"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 101 {
		t.Fatalf("count = %d, %v", n, err)
	}
}

// BenchmarkInsertInTransaction is an insert of one row in a transaction of
// 16, through Open's connection (statements kept) and through the driver's
// own (each call prepares its SQL).
func BenchmarkInsertInTransaction(b *testing.B) {
	for _, mode := range []string{"kept", "driver"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "b.db")
			var db *sql.DB
			var err error
			if mode == "kept" {
				db, err = Open(path)
			} else {
				db, err = sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
				db.SetMaxOpenConns(1)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(ctx, `CREATE TABLE m (id INTEGER PRIMARY KEY, conv TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i += 16 {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				for j := i; j < i+16 && j < b.N; j++ {
					if _, err := tx.ExecContext(ctx, `INSERT INTO m (conv, seq, body) VALUES (?, ?, ?)`, "c", j, "Where is my parcel? It was due on Monday."); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
