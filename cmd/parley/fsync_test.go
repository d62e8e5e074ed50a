package main

import (
	"database/sql"
	"testing"
)

// TestFsyncSetting: --fsync opens every SQLite file with
// synchronous=FULL (an ack waits for stable storage); without it NORMAL.
func TestFsyncSetting(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		n := &node{cfg: settings{DataDir: t.TempDir(), Fsync: fsync}, dbs: map[string]*sql.DB{}}
		db, err := n.db("chat")
		if err != nil {
			t.Fatal(err)
		}
		var mode int
		if err := db.QueryRow(`PRAGMA synchronous`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		want := 1 // NORMAL
		if fsync {
			want = 2 // FULL
		}
		if mode != want {
			t.Errorf("--fsync=%v: synchronous = %d, want %d", fsync, mode, want)
		}
		n.close()
	}
	// The flag and its variable are read.
	var s settings
	fs := roleFlags("serve", roleSet{Chat: true}, &s)
	t.Setenv("PARLEY_FSYNC", "true")
	if err := fs.parse(nil); err != nil || !s.Fsync {
		t.Fatalf("PARLEY_FSYNC=true: %v, Fsync=%v", err, s.Fsync)
	}
}
