package notifications

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/parleychat/parley/sqlstore/sqltest"
)

// openStore opens a fresh store of the given backend for t.
func openStore(t testing.TB, backend string) Store {
	t.Helper()
	return sqltest.Store(t, backend, "notifications", PostgresSchema, 4, OpenSQLite, OpenPostgres)
}

func testMail(key string, at time.Time) *Mail {
	return &Mail{ID: "m-" + key, Key: key, Kind: "reply", To: "ana@example.com", Message: []byte("Subject: hi\r\n\r\nbody"), NextAt: at, Created: at}
}

// TestStoreConformance runs every Store method on each backend.
func TestStoreConformance(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStore(t, backend)
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		at := func(d time.Duration) time.Time { return t0.Add(d) }
		apply := func(cs ...Change) {
			t.Helper()
			if err := s.Apply(ctx, cs); err != nil {
				t.Fatal(err)
			}
		}
		// c1: an agent replies twice; the visitor reads the first only.
		apply(Change{Kind: ChangeStarted, ConversationID: "c1", SiteID: "s1", At: t0},
			Change{Kind: ChangeVisitor, ConversationID: "c1", SiteID: "s1", At: at(time.Second), Seq: 1},
			Change{Kind: ChangeReply, ConversationID: "c1", SiteID: "s1", At: at(2 * time.Second), Seq: 2, Due: at(2 * time.Minute)},
			Change{Kind: ChangeReply, ConversationID: "c1", SiteID: "s1", At: at(3 * time.Second), Seq: 3, Due: at(3 * time.Minute)},
			Change{Kind: ChangeRead, ConversationID: "c1", SiteID: "s1", At: at(4 * time.Second), Seq: 2})
		// c2: the reply is read in time: nothing is due. Applying twice changes nothing.
		c2 := []Change{{Kind: ChangeReply, ConversationID: "c2", SiteID: "s1", At: t0, Seq: 4, Due: at(2 * time.Minute)},
			{Kind: ChangeRead, ConversationID: "c2", SiteID: "s1", At: at(time.Second), Seq: 4}}
		apply(c2...)
		apply(c2...)
		if due, err := s.ClaimDueReplies(ctx, at(time.Minute), time.Minute, 10); err != nil || len(due) != 0 {
			t.Fatalf("nothing is due yet: %+v %v", due, err)
		}
		due, err := s.ClaimDueReplies(ctx, at(2*time.Minute), time.Minute, 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("ClaimDueReplies = %+v %v", due, err)
		}
		if d := due[0]; d.ConversationID != "c1" || d.SiteID != "s1" || d.VisitorReadSeq != 2 || d.LastReplySeq != 3 || d.EmailedSeq != 0 {
			t.Fatalf("due %+v", d)
		}
		if again, _ := s.ClaimDueReplies(ctx, at(2*time.Minute), time.Minute, 10); len(again) != 0 {
			t.Fatal("a leased conversation was claimed again")
		}
		// A reply arrives while the mail is being made: it is due later.
		apply(Change{Kind: ChangeReply, ConversationID: "c1", SiteID: "s1", At: at(2 * time.Minute), Seq: 5, Due: at(4 * time.Minute)})
		if err := s.FinishReply(ctx, "c1", 3, at(5*time.Minute), testMail("reply:c1:3", at(2*time.Minute))); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishReply(ctx, "c1", 3, at(5*time.Minute), testMail("reply:c1:3", at(2*time.Minute))); err != nil {
			t.Fatal(err) // the same mail twice is stored once
		}
		if d, _ := s.ClaimDueReplies(ctx, at(4*time.Minute), time.Minute, 10); len(d) != 0 {
			t.Fatalf("the newer reply came due early: %+v", d)
		}
		d, _ := s.ClaimDueReplies(ctx, at(5*time.Minute), time.Minute, 10)
		if len(d) != 1 || d[0].EmailedSeq != 3 || d[0].LastReplySeq != 5 {
			t.Fatalf("newer reply: %+v", d)
		}
		if err := s.FinishReply(ctx, "c1", 5, time.Time{}, nil); err != nil {
			t.Fatal(err)
		}
		if d, _ := s.ClaimDueReplies(ctx, at(time.Hour), time.Minute, 10); len(d) != 0 {
			t.Fatalf("handled replies came due again: %+v", d)
		}

		// Mail outbox: claimed when due, retried after a failure, sent once.
		mails, err := s.ClaimMail(ctx, at(3*time.Minute), time.Minute, 10)
		if err != nil || len(mails) != 1 || mails[0].Key != "reply:c1:3" || !bytes.Equal(mails[0].Message, []byte("Subject: hi\r\n\r\nbody")) || mails[0].To != "ana@example.com" {
			t.Fatalf("ClaimMail = %+v %v", mails, err)
		}
		if err := s.MailFailed(ctx, mails[0].ID, at(3*time.Minute), "dial tcp: connection refused", at(10*time.Minute), false); err != nil {
			t.Fatal(err)
		}
		if m, _ := s.ClaimMail(ctx, at(9*time.Minute), time.Minute, 10); len(m) != 0 {
			t.Fatal("a failed mail was retried before its time")
		}
		m, _ := s.ClaimMail(ctx, at(10*time.Minute), time.Minute, 10)
		if len(m) != 1 || m[0].Tries != 1 || m[0].Error != "dial tcp: connection refused" {
			t.Fatalf("retry: %+v", m)
		}
		if err := s.MailSent(ctx, m[0].ID, at(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		sent, err := s.Mails(ctx, MailSent, 10)
		if err != nil || len(sent) != 1 || sent[0].Tries != 2 || !sent[0].SentAt.Equal(at(10*time.Minute)) {
			t.Fatalf("Mails(sent) = %+v %v", sent, err)
		}

		// Jobs: unique by key, claimed when due, done with their mail.
		j := Job{Key: "transcript:c1:ev1", Kind: JobTranscript, ConversationID: "c1", DueAt: t0}
		for range 2 {
			if err := s.AddJob(ctx, j); err != nil {
				t.Fatal(err)
			}
		}
		jobs, err := s.ClaimJobs(ctx, t0, time.Minute, 10)
		if err != nil || len(jobs) != 1 || jobs[0].ConversationID != "c1" || jobs[0].Kind != JobTranscript {
			t.Fatalf("ClaimJobs = %+v %v", jobs, err)
		}
		if err := s.FinishJob(ctx, j.Key, testMail("transcript:c1:ev1", t0)); err != nil {
			t.Fatal(err)
		}
		if jobs, _ := s.ClaimJobs(ctx, at(time.Hour), time.Minute, 10); len(jobs) != 0 {
			t.Fatalf("a finished job came back: %+v", jobs)
		}

		// Unsubscribes and preferences.
		if err := s.Unsubscribe(ctx, "s1", "ana@example.com", t0); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Unsubscribed(ctx, "s1", "ana@example.com"); err != nil || !ok {
			t.Fatalf("Unsubscribed = %v %v", ok, err)
		}
		if ok, _ := s.Unsubscribed(ctx, "s2", "ana@example.com"); ok {
			t.Fatal("unsubscribing from one site left another")
		}
		if p, ok, err := s.Preferences(ctx, "u1"); err != nil || ok || p != DefaultPreferences {
			t.Fatalf("unset preferences = %+v %v %v", p, ok, err)
		}
		want := Preferences{Sound: false, DesktopMention: true, DigestAfterMinutes: 30, QueueAlertMinutes: 2}
		if err := s.SetPreferences(ctx, "u1", want, t0); err != nil {
			t.Fatal(err)
		}
		if p, ok, err := s.Preferences(ctx, "u1"); err != nil || !ok || p != want {
			t.Fatalf("Preferences = %+v %v %v", p, ok, err)
		}

		// Digest: u1 goes away; after 30 minutes a digest of waiting conversations is due.
		apply(Change{Kind: ChangeQueued, ConversationID: "c3", SiteID: "s1", At: at(time.Minute)},
			Change{Kind: ChangeAssigned, ConversationID: "c4", SiteID: "s1", At: at(time.Minute), AgentID: "u1"},
			Change{Kind: ChangeVisitor, ConversationID: "c4", SiteID: "s1", At: at(2 * time.Minute)},
			Change{Kind: ChangePresence, AgentID: "u1", Status: "online", At: t0},
			Change{Kind: ChangePresence, AgentID: "u1", Status: "away", At: at(10 * time.Minute)},
			Change{Kind: ChangePresence, AgentID: "u1", Status: "offline", At: at(20 * time.Minute)}) // still away: since stays
		if dd, _ := s.ClaimDigests(ctx, at(39*time.Minute), time.Minute, 10); len(dd) != 0 {
			t.Fatalf("digest before 30 minutes away: %+v", dd)
		}
		dd, err := s.ClaimDigests(ctx, at(40*time.Minute), time.Minute, 10)
		if err != nil || len(dd) != 1 || dd[0].AgentID != "u1" || !dd[0].AwaySince.Equal(at(10*time.Minute)) || !dd[0].LastDigestAt.IsZero() {
			t.Fatalf("ClaimDigests = %+v %v", dd, err)
		}
		w, err := s.Waiting(ctx, "u1", 10)
		if err != nil || len(w) != 2 || w[0].ConversationID != "c3" || w[0].Mine || w[1].ConversationID != "c4" || !w[1].Mine || !w[1].Since.Equal(at(2*time.Minute)) {
			t.Fatalf("Waiting = %+v %v", w, err)
		}
		if err := s.FinishDigest(ctx, "u1", at(40*time.Minute), at(100*time.Minute), testMail("digest:u1:1", at(40*time.Minute))); err != nil {
			t.Fatal(err)
		}
		if dd, _ := s.ClaimDigests(ctx, at(99*time.Minute), time.Minute, 10); len(dd) != 0 {
			t.Fatal("a second digest before the next one is due")
		}
		dd, _ = s.ClaimDigests(ctx, at(100*time.Minute), time.Minute, 10)
		if len(dd) != 1 || !dd[0].LastDigestAt.Equal(at(40*time.Minute)) {
			t.Fatalf("second digest: %+v", dd)
		}
		// Back online: no digest, and the queue empties as conversations are taken.
		if err := s.FinishDigest(ctx, "u1", at(100*time.Minute), at(160*time.Minute), nil); err != nil {
			t.Fatal(err)
		}
		apply(Change{Kind: ChangePresence, AgentID: "u1", Status: "online", At: at(170 * time.Minute)},
			Change{Kind: ChangeAssigned, ConversationID: "c3", SiteID: "s1", At: at(171 * time.Minute), AgentID: "u2"},
			Change{Kind: ChangeReply, ConversationID: "c4", SiteID: "s1", At: at(172 * time.Minute), Seq: 2, Due: at(174 * time.Minute)})
		if dd, _ := s.ClaimDigests(ctx, at(300*time.Minute), time.Minute, 10); len(dd) != 0 {
			t.Fatal("a digest for an agent who is online")
		}
		if w, _ := s.Waiting(ctx, "u1", 10); len(w) != 0 {
			t.Fatalf("still waiting: %+v", w)
		}

		key, err := s.SigningKey(ctx, []byte("first-candidate-key-0123456789ab"))
		if err != nil || string(key) != "first-candidate-key-0123456789ab" {
			t.Fatalf("SigningKey = %q %v", key, err)
		}
		if key, _ := s.SigningKey(ctx, []byte("second")); string(key) != "first-candidate-key-0123456789ab" {
			t.Fatalf("a second node changed the key: %q", key)
		}
	})
}

// TestApplyKeepsEachConversationsOrder: one batch interleaving two
// conversations' changes applies each conversation's in its order (the
// PostgreSQL store groups them into a few statements).
func TestApplyKeepsEachConversationsOrder(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		s := openStore(t, backend)
		t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		at := func(d time.Duration) time.Time { return t0.Add(d) }
		change := func(kind, conv string, d time.Duration, seq int64, due time.Duration) Change {
			return Change{Kind: kind, ConversationID: conv, SiteID: "s1", At: at(d), Seq: seq, Due: at(due)}
		}
		// c3: a reply, read, then another reply due at 2 minutes.
		// c4: two replies unread, due from the first at 1 minute.
		if err := s.Apply(ctx, []Change{
			change(ChangeReply, "c3", time.Second, 1, time.Minute),
			change(ChangeReply, "c4", time.Second, 1, time.Minute),
			change(ChangeRead, "c3", 2*time.Second, 1, 0),
			change(ChangeVisitor, "c4", 2*time.Second, 0, 0),
			{Kind: ChangePresence, AgentID: "a1", Status: "online", At: t0},
			change(ChangeReply, "c4", 3*time.Second, 2, 2*time.Minute),
			change(ChangeReply, "c3", 3*time.Second, 2, 2*time.Minute),
		}); err != nil {
			t.Fatal(err)
		}
		due, err := s.ClaimDueReplies(ctx, at(90*time.Second), time.Hour, 10)
		if err != nil || len(due) != 1 || due[0].ConversationID != "c4" || due[0].LastReplySeq != 2 {
			t.Fatalf("due at 1m30s = %+v, %v; want c4 alone", due, err)
		}
		due, err = s.ClaimDueReplies(ctx, at(2*time.Minute), time.Hour, 10)
		if err != nil || len(due) != 1 || due[0].ConversationID != "c3" || due[0].VisitorReadSeq != 1 || due[0].LastReplySeq != 2 {
			t.Fatalf("due at 2m = %+v, %v; want c3 (read 1, replied 2)", due, err)
		}
	})
}
