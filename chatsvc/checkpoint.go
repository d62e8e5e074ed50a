package chatsvc

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/parleychat/parley/sqlstore"
)

// checkpointEvery is how often the background checkpointer copies the
// write-ahead log into chat.db.
const checkpointEvery = 250 * time.Millisecond

// writerCacheKiB is the page cache of chat.db's connection (SQLite's
// default is 2 MiB); it fills only as the working set grows.
const writerCacheKiB = 32 << 10

// walAutoCheckpoint is SQLite's default, restored when the checkpointer stops.
const walAutoCheckpoint = 1000

// checkpoints moves SQLite's WAL checkpoints off the writer: left to
// itself SQLite checkpoints inside the commit that crosses 1000 WAL pages,
// so one group commit in a few pays for copying pages into chat.db and an
// fsync while every sender waits. Here the writer's connection stops
// checkpointing and a second connection to the same file runs passive
// checkpoints (which never block the writer) on a timer. When chat.db has
// no file (in memory) or the second connection cannot be opened, SQLite's
// own checkpoints stay on.
func (s *Service) checkpoints(ctx context.Context) {
	var path string
	if err := s.db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path); err != nil || path == "" {
		if err != nil {
			s.log.Warn("chat.db path unknown; checkpoints stay in the writer", "err", err)
		}
		return
	}
	ck, err := sqlstore.Open(path)
	if err != nil {
		s.log.Warn("open chat.db for checkpoints; checkpoints stay in the writer", "err", err)
		return
	}
	defer ck.Close()
	if err := s.setAutoCheckpoint(ctx, 0); err != nil {
		s.log.Warn("checkpoints stay in the writer", "err", err)
		return
	}
	defer func() {
		if err := s.setAutoCheckpoint(context.WithoutCancel(ctx), walAutoCheckpoint); err != nil {
			s.log.Warn("restore automatic checkpoints", "err", err)
		}
	}()
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			logPages, done, err := checkpoint(ctx, ck)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("checkpoint chat.db", "err", err)
				}
				continue
			}
			if logPages < 0 {
				continue // the writer's catch-up was checkpointing at that moment
			}
			s.metrics.walPages.Set(float64(logPages))
			s.metrics.walBackfilled.Set(float64(done))
			if logPages >= walAutoCheckpoint {
				// Under steady writes the log is never fully copied at the
				// moment a transaction starts, so SQLite never rewinds it:
				// the writer finishes the copy between two batches.
				s.writer.walCatchUp.Store(true)
			}
		}
	}
}

// catchUpWAL runs on the writer between batches: it copies the few log
// pages the background checkpointer has not, so that the next transaction
// starts the log again from its beginning.
func (w *writer) catchUpWAL(ctx context.Context) {
	if !w.walCatchUp.Swap(false) {
		return
	}
	if _, _, err := checkpoint(ctx, w.db); err != nil && ctx.Err() == nil {
		w.s.log.Warn("checkpoint chat.db from the writer", "err", err)
	}
}

// setAutoCheckpoint sets the writer connection's automatic checkpoint
// threshold in pages (0: off). chat.db's handle has one connection; a
// connection it opens later starts with SQLite's default again.
func (s *Service) setAutoCheckpoint(ctx context.Context, pages int) error {
	var got int
	if err := s.db.QueryRowContext(ctx, fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, pages)).Scan(&got); err != nil {
		return fmt.Errorf("set wal_autocheckpoint to %d: %w", pages, err)
	}
	return nil
}

// checkpoint copies what it can of the WAL into the database file without
// waiting for the writer; it returns the WAL's pages and how many of them
// are in the database file now.
func checkpoint(ctx context.Context, db *sql.DB) (logPages, done int, err error) {
	var busy int
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &done); err != nil {
		return 0, 0, fmt.Errorf("passive checkpoint: %w", err)
	}
	return logPages, done, nil
}
