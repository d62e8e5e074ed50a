package notifications

import (
	"net/mail"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// sendAnswer sends a visitor's answer to the inbound listener through a
// real SMTP client and returns the server's error.
func sendAnswer(t *testing.T, addr, from, to, body string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := "From: " + from + "\r\nTo: " + to + "\r\nSubject: Re: reply\r\nMessage-ID: <" + strings.ReplaceAll(body[:min(8, len(body))], " ", "") + "@client.test>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" + strings.ReplaceAll(body, "\n", "\r\n") + "\r\n"
	envelope := from
	if a, err := mail.ParseAddress(from); err == nil {
		envelope = a.Address
	}
	return c.SendMail(envelope, []string{to}, strings.NewReader(msg))
}
