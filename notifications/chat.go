package notifications

import (
	"context"
	"time"
)

// Chat is what notifications needs from the chat service; cmd/parley
// adapts chatsvc to it.
type Chat interface {
	// Contact returns a conversation's visitor; an unknown conversation is
	// an error that IsNotFound recognises.
	Contact(ctx context.Context, convID string) (Contact, error)
	// Transcript returns what the visitor may see of a conversation, in order.
	Transcript(ctx context.Context, convID string) ([]Line, error)
	// ResumeLink returns a link that reopens the conversation in the
	// widget; ok is false when there is none.
	ResumeLink(ctx context.Context, convID string) (link string, ok bool, err error)
	// PostVisitorMessage stores text as the visitor's message; clientID
	// makes a retry land once. A refusal the sender must not retry (a ban,
	// a text too long) is an error IsRefusal recognises.
	PostVisitorMessage(ctx context.Context, convID, clientID, text string) error
	// Site returns a site's look, email settings and texts.
	Site(siteID string) (Site, bool)
	// IsNotFound and IsRefusal classify Chat's errors.
	IsNotFound(err error) bool
	IsRefusal(err error) bool
}

// Contact is a conversation's visitor.
type Contact struct {
	SiteID, VisitorID string
	Name, Email       string
	// Lang is the language of mail to this visitor.
	Lang string
}

// Line is one message of a transcript.
type Line struct {
	Seq int64
	// Role is visitor, agent or bot.
	Role, Name, Text string
	At               time.Time
}

// Site is what a mail needs of a site.
type Site struct {
	ID, Name, Color     string
	DisableReplies      bool
	TranscriptOnResolve bool
	FromName, Footer    string
	// Text renders a visitor-facing catalog text in lang with the site's
	// overrides; args are name, value pairs for its {placeholders}.
	Text func(lang, key string, args ...string) string
}
