package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emersion/go-smtp"

	"github.com/parleychat/parley/browsertest"
	"github.com/parleychat/parley/notifications/mailtest"
)

// startE2EWithMail starts `parley serve` sending mail to a real SMTP
// server started by the test, with its inbound listener on loopback.
func startE2EWithMail(t *testing.T) (*parleyE2E, *mailtest.Server, string) {
	mx := mailtest.Start(t)
	inbound := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startE2E(t, "--smtp-addr", mx.Addr, "--smtp-from", "Parley Support <support@shop.test>", "--smtp-tls", "none",
		"--smtp-listen", inbound, "--email-reply-delay", "1s")
	return p, mx, inbound
}

// visitorWithEmail starts a visitor session that names itself (as
// Parley.boot({user}) does), connects, and reports the page it is on.
func visitorWithEmail(t *testing.T, p *parleyE2E, email, page string) *goVisitor {
	t.Helper()
	token, id := visitorSession(t, p.base, p.base, map[string]any{"site_key": p.site.Key, "user": map[string]string{"id": "crm-42", "name": "Ana Lima", "email": email}})
	v := dialGoVisitor(t, p.base, p.base, token, id)
	v.send(map[string]any{"type": "context", "ref": "ctx", "page_url": page, "locale": "es-ES"})
	return v
}

var replyTo = regexp.MustCompile(`reply\+[a-z0-9]{42}@shop\.test`)

// TestE2EEmailContinuity: through a running `parley serve`, an agent's
// reply the visitor does not read is mailed by a real SMTP server with the
// text and a link back to the page the visitor chatted on; the visitor
// answers the mail and the answer reaches the agent in the conversation.
func TestE2EEmailContinuity(t *testing.T) {
	p, mx, inbound := startE2EWithMail(t)
	p.createStaff("ada@mail.test", "Ada", "agent")
	agent := signIn(t, p.base, "ada@mail.test", e2eStaffPassword)
	// The site speaks Spanish too: mail goes out in the visitor's language.
	var site map[string]any
	p.admin.call("GET", "/api/chat/sites/"+p.site.ID, nil, http.StatusOK, &site)
	site["settings"].(map[string]any)["languages"] = []string{"es"}
	p.admin.call("PUT", "/api/chat/sites/"+p.site.ID, site, http.StatusOK, nil)
	v := visitorWithEmail(t, p, "ana@example.com", p.base+"/try")
	convID := v.say("m1", "¿Dónde está mi pedido?")

	agent.call("POST", "/api/chat/conversations/"+convID+"/messages", map[string]any{"text": "Sale hoy por la tarde.", "client_id": "a1"}, http.StatusCreated, nil)
	waitUntil(t, 20*time.Second, "the reply by email", func() bool { return len(mx.Messages()) == 1 })
	m := mx.Messages()[0]
	if m.To[0] != "ana@example.com" || !strings.Contains(m.Text, "Sale hoy por la tarde.") || m.Subject() != "Demo: nueva respuesta en tu conversación" {
		t.Fatalf("mail to %v %q:\n%s", m.To, m.Subject(), m.Text)
	}
	link := regexp.MustCompile(`http://\S+#parley_resume=\S+`).FindString(m.Text)
	if !strings.HasPrefix(link, p.base+"/try#parley_resume=v1.") {
		t.Fatalf("no link back to the visitor's page in:\n%s", m.Text)
	}
	if !strings.Contains(m.Header.Get("List-Unsubscribe"), p.base+"/email/unsubscribe?t=") || m.Header.Get("References") != "<conversation."+convID+"@shop.test>" {
		t.Fatalf("headers: %v", m.Header)
	}

	// The visitor answers by mail.
	c, err := smtp.Dial(inbound)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: Ana Lima <ana@example.com>\r\nTo: " + replyTo.FindString(m.Header.Get("Reply-To")) + "\r\nSubject: Re: reply\r\nMessage-ID: <answer-1@example.com>\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\nGenial, gracias.\r\n\r\nOn Tue, Parley wrote:\r\n> Sale hoy por la tarde.\r\n"
	if err := c.SendMail("ana@example.com", []string{replyTo.FindString(m.Header.Get("Reply-To"))}, strings.NewReader(msg)); err != nil {
		t.Fatalf("answer by mail: %v", err)
	}
	c.Close()
	var msgs struct {
		Messages []struct {
			Text   string `json:"text"`
			Author struct {
				Role string `json:"role"`
			} `json:"author"`
		} `json:"messages"`
	}
	agent.call("GET", "/api/chat/conversations/"+convID+"/messages", nil, http.StatusOK, &msgs)
	last := msgs.Messages[len(msgs.Messages)-1]
	if last.Text != "Genial, gracias." || last.Author.Role != "visitor" {
		t.Fatalf("the conversation ends with %+v", msgs.Messages)
	}

	// A transcript on request goes to the visitor too.
	var q struct {
		To string `json:"to"`
	}
	agent.call("POST", "/api/notifications/transcripts", map[string]string{"conversation_id": convID}, http.StatusAccepted, &q)
	waitUntil(t, 20*time.Second, "the transcript", func() bool { return len(mx.Messages()) == 2 })
	if tr := mx.Messages()[1]; q.To != "ana@example.com" || tr.Subject() != "Tu conversación con Demo" || !strings.Contains(tr.Text, "Genial, gracias.") {
		t.Fatalf("transcript %q:\n%s", tr.Subject(), tr.Text)
	}
}

// TestE2EAgentRepliesToVisitorWhoLeft is the browser walk: a visitor who
// gave an email chats on a customer page and closes it; the agent answers
// in the console; the email arrives with the text; its link reopens the
// conversation in the widget with the answer in it.
func TestE2EAgentRepliesToVisitorWhoLeft(t *testing.T) {
	p, mx, _ := startE2EWithMail(t)
	p.createStaff("ada@left.test", "Ada Agent", "agent")
	page := newTestPage(t, `<script src="`+p.base+`/widget.js" data-manual></script>
<script>Parley.boot({siteKey: "`+p.site.Key+`", user: {id: "crm-7", name: "Ana Lima", email: "ana.left@example.com"}});</script>`)
	p.allowOrigin(p.site.ID, page.origin)

	agent := browsertest.New(t, 1366, 900)
	loginUI(t, agent, p.base, "/app/console", "ada@left.test", e2eStaffPassword)
	waitFor(t, agent, 15*time.Second, `document.querySelector('.live-dot')?.classList.contains('open')`)

	visitor := browsertest.New(t, 1024, 768)
	do(t, visitor, "open the customer page", chromedp.Navigate(page.origin+"/"))
	visitorSays(t, visitor, "Do you ship to Lisbon?")
	do(t, visitor, "close the page", chromedp.Navigate("about:blank"))

	consoleReply(t, agent, "Do you ship to Lisbon?", "Yes, in two days.", "Yes, in two days.")
	waitUntil(t, 30*time.Second, "the email with the agent's answer", func() bool { return len(mx.Messages()) == 1 })
	m := mx.Messages()[0]
	if m.To[0] != "ana.left@example.com" || !strings.Contains(m.Text, "Yes, in two days.") || !strings.Contains(m.HTML, "Yes, in two days.") {
		t.Fatalf("mail to %v:\n%s", m.To, m.Text)
	}
	// How the mail looks (its HTML part, as a mail client shows it).
	mailView := browsertest.New(t, 800, 700)
	do(t, mailView, "render the mail", chromedp.Navigate("data:text/html;base64,"+base64.StdEncoding.EncodeToString([]byte(m.HTML))))
	waitFor(t, mailView, 10*time.Second, `document.body.textContent.includes("Yes, in two days.")`)
	browsertest.Screenshot(t, mailView, "e2e-email-reply-html")

	link := regexp.MustCompile(`http://\S+#parley_resume=\S+`).FindString(m.Text)
	if !strings.HasPrefix(link, page.origin+"/#parley_resume=") {
		t.Fatalf("link %q does not lead back to the customer page", link)
	}

	// The link reopens the conversation (a fresh browser: no stored token).
	again := browsertest.New(t, 1024, 768)
	do(t, again, "follow the link in the email", chromedp.Navigate(link))
	visitorSees(t, again, "Yes, in two days.")
	if eval[string](t, again, `location.hash`) != "" {
		t.Error("the visitor token stays in the address bar")
	}
	browsertest.Screenshot(t, again, "e2e-email-link-reopens-conversation")
}
