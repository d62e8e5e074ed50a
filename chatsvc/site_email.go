package chatsvc

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// EmailSettings is what a site's visitors get by email (the notifications
// component sends it; docs/integrations.md). The zero value sends replies
// to visitors who left an address and did not read them in time, and no
// transcripts.
type EmailSettings struct {
	// DisableReplies stops emailing unread agent replies to visitors.
	DisableReplies bool `json:"disable_replies,omitempty"`
	// TranscriptOnResolve emails the visitor a transcript when the
	// conversation is resolved.
	TranscriptOnResolve bool `json:"transcript_on_resolve,omitempty"`
	// FromName is the sender name visitors see (default: the site's name).
	FromName string `json:"from_name,omitempty"`
	// Footer is plain text at the bottom of every mail (the company's
	// postal address, which bulk-mail rules ask for).
	Footer string `json:"footer,omitempty"`
}

func (e *EmailSettings) check() error {
	e.FromName, e.Footer = strings.TrimSpace(e.FromName), strings.TrimSpace(e.Footer)
	if utf8.RuneCountInString(e.FromName) > 100 || strings.ContainsAny(e.FromName, "\r\n<>\"") {
		return errors.New(`email.from_name must be at most 100 characters without line breaks, <, > or "`)
	}
	if n := utf8.RuneCountInString(e.Footer); n > 1000 {
		return fmt.Errorf("email.footer has %d characters; the limit is 1000", n)
	}
	return nil
}
