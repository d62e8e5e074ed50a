package chatsvc

import (
	"context"
	"errors"
	"strings"
	"time"
)

// messagesAfter returns up to limit messages with seq > after, in order.
func (s *Service) messagesAfter(ctx context.Context, convID string, after int64, limit int) ([]Message, error) {
	return s.store.MessagesAfter(ctx, convID, after, limit)
}

func (s *Service) summaries(rows []ConversationRow) []Conversation {
	out := make([]Conversation, len(rows))
	for i := range rows {
		out[i] = s.summary(&rows[i].Conv, rows[i].Visitor)
	}
	return out
}

// latestConversation is the visitor's newest conversation, or nil.
func (s *Service) latestConversation(ctx context.Context, visitorID string) (*Conversation, error) {
	row, err := s.store.LatestConversationRow(ctx, visitorID)
	if err != nil || row == nil {
		return nil, err
	}
	c := s.summary(&row.Conv, row.Visitor)
	return &c, nil
}

// ConversationFilter selects inbox rows.
type ConversationFilter struct {
	Status string // open, pending, resolved, all
	Scope  string // unassigned, mine, all
	Me     string
	SiteID string
	// Sites limits the rows to these sites (nil: every site; empty: none).
	Sites     []string
	VisitorID string
	Before    time.Time
	Limit     int
}

// Conversations lists conversations newest first.
func (s *Service) Conversations(ctx context.Context, f ConversationFilter) ([]Conversation, error) {
	switch f.Status {
	case "", StatusOpen, StatusPending, StatusResolved, "all":
	default:
		return nil, errf(CodeBadRequest, "status must be open, pending, resolved or all, not %q", f.Status)
	}
	switch f.Scope {
	case "", "all", "unassigned", "mine":
	default:
		return nil, errf(CodeBadRequest, "scope must be unassigned, mine or all, not %q", f.Scope)
	}
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	rows, err := s.store.ConversationRows(ctx, f)
	if err != nil {
		return nil, err
	}
	return s.summaries(rows), nil
}

// conversation returns one summary.
func (s *Service) conversation(ctx context.Context, id string) (Conversation, error) {
	c, err := s.store.Conversation(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Conversation{}, errf(CodeNotFound, "conversation %s not found", id)
	}
	if err != nil {
		return Conversation{}, err
	}
	v, _, err := s.store.Visitor(ctx, c.VisitorID)
	if err != nil {
		return Conversation{}, err
	}
	return s.summary(c, visitorState{ID: c.VisitorID, SiteID: c.SiteID, Name: v.Name, Email: v.Email}), nil
}

// visitorDetail is what agents see about a visitor.
func (s *Service) visitorDetail(ctx context.Context, id string) (Visitor, error) {
	v, ok, err := s.store.Visitor(ctx, id)
	if err != nil {
		return Visitor{}, err
	}
	if !ok {
		return Visitor{ID: id}, nil
	}
	v.Browser = browserOf(v.UserAgent)
	if !browserTimezone(v.Timezone) {
		v.Timezone = "" // stored before zones were checked: the console could not show it
	}
	if loc, err := time.LoadLocation(v.Timezone); err == nil && v.Timezone != "" {
		v.LocalTime = time.Now().In(loc).Format(time.RFC3339)
	}
	return v, nil
}

// browserOf names the browser and OS of a User-Agent, roughly.
func browserOf(ua string) string {
	if ua == "" {
		return ""
	}
	browser := "Unknown browser"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chromium/", "Chromium"},
		{"Chrome/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if i := strings.Index(ua, b.token); i >= 0 {
			ver := ua[i+len(b.token):]
			if j := strings.IndexAny(ver, ". "); j > 0 {
				ver = ver[:j]
			}
			browser = b.name + " " + ver
			break
		}
	}
	os := ""
	for _, o := range []struct{ token, name string }{
		{"Windows", "Windows"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Android", "Android"},
		{"Mac OS X", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			os = o.name
			break
		}
	}
	if os != "" {
		return browser + " on " + os
	}
	return browser
}
