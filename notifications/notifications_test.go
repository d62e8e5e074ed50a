package notifications

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/ingest/ingesttest"
	"github.com/parleychat/parley/notifications/mailtest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// memChat stands in for chat: a few conversations and the messages
// visitors answered by email.
type memChat struct {
	mu       sync.Mutex
	contacts map[string]Contact
	lines    map[string][]Line
	posted   []string
	sites    map[string]Site
}

var errNoConv = errors.New("conversation not found")
var errBanned = errors.New("banned")

func (c *memChat) Contact(_ context.Context, id string) (Contact, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ct, ok := c.contacts[id]
	if !ok {
		return Contact{}, errNoConv
	}
	return ct, nil
}

func (c *memChat) Transcript(_ context.Context, id string) ([]Line, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Line(nil), c.lines[id]...), nil
}

func (c *memChat) ResumeLink(_ context.Context, id string) (string, bool, error) {
	return "https://shop.example/checkout#parley_resume=token-" + id, true, nil
}

func (c *memChat) PostVisitorMessage(_ context.Context, id, clientID, text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.contacts[id].VisitorID == "banned" {
		return errBanned
	}
	c.posted = append(c.posted, clientID+"|"+text)
	return nil
}

func (c *memChat) Site(id string) (Site, bool) {
	s, ok := c.sites[id]
	return s, ok
}

func (c *memChat) IsNotFound(err error) bool { return errors.Is(err, errNoConv) }
func (c *memChat) IsRefusal(err error) bool  { return errors.Is(err, errBanned) }

func (c *memChat) say(conv string, l Line) {
	c.mu.Lock()
	c.lines[conv] = append(c.lines[conv], l)
	c.mu.Unlock()
}

// spanish are the catalog texts the stand-in site speaks.
var spanish = map[string]string{
	"email.reply_subject":       "{site}: nueva respuesta en tu conversación",
	"email.reply_intro":         "{name} respondió en tu conversación:",
	"email.open_conversation":   "Continuar la conversación",
	"email.reply_hint":          "También puedes contestar respondiendo a este correo.",
	"email.unsubscribe":         "Darse de baja de estos correos",
	"email.unsubscribe_button":  "Darse de baja",
	"email.unsubscribe_confirm": "¿Dejar de enviar correos de {site} a {email}?",
	"email.unsubscribed":        "Listo. {email} ya no recibirá correos sobre conversaciones con {site}.",
	"email.transcript_subject":  "Tu conversación con {site}",
	"email.transcript_intro":    "Aquí tienes una copia de tu conversación.",
	"message.you":               "Tú",
	"message.agent":             "Agente",
}

func catalogText(lang, key string, args ...string) string {
	t := spanish[key]
	for i := 0; i+1 < len(args); i += 2 {
		t = strings.ReplaceAll(t, "{"+args[i]+"}", args[i+1])
	}
	return t
}

// notifyEnv is a running notifications component on a real broker, with
// a real SMTP server to send to and its inbound listener on loopback.
type notifyEnv struct {
	t        *testing.T
	svc      *Service
	store    Store
	chat     *memChat
	smtp     *mailtest.Server
	producer *ingest.Producer
	web      string
	dir      *access.Directory
}

func startNotify(t *testing.T, backend string, tune func(*Config)) *notifyEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	broker := ingesttest.Broker(t, 3)
	producer := ingesttest.Producer(t, broker.Addrs())
	staff, err := access.OpenSQLite(ctx, sqltest.SQLite(t, "access"))
	if err != nil {
		t.Fatal(err)
	}
	dir := access.NewDirectory(staff)
	dir.SetBcryptCost(bcrypt.MinCost)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	chat := &memChat{contacts: map[string]Contact{}, lines: map[string][]Line{}, sites: map[string]Site{
		"s1": {ID: "s1", Name: "Tienda", Color: "#0f766e", Footer: "Tienda SL, Calle Mayor 1, Madrid", Text: catalogText},
		"s2": {ID: "s2", Name: "Quiet", Color: "#000000", DisableReplies: true, Text: catalogText},
	}}
	mx := mailtest.Start(t)
	web, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t, backend)
	cfg := Config{
		Store: store, Chat: chat, Guard: access.NewGuard(dir, false, log), Brokers: broker.Addrs(), DeadLetter: producer,
		SMTP:      SMTP{Addr: mx.Addr, From: "Parley <support@shop.test>", TLS: "none", Listen: "127.0.0.1:0"},
		PublicURL: "http://" + web.Addr().String(), Secret: []byte("0123456789abcdef0123456789abcdef"),
		ReplyDelay: 400 * time.Millisecond, Tick: 50 * time.Millisecond,
		MailRetry: Backoff{Initial: 100 * time.Millisecond, Max: 400 * time.Millisecond, GiveUpAfter: time.Hour},
		GroupID:   "parley-notifications-test", Logger: log,
	}
	if tune != nil {
		tune(&cfg)
	}
	svc, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	svc.Mount(app)
	go app.Listener(web)
	done := make(chan struct{})
	go func() { defer close(done); svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		app.Shutdown()
	})
	return &notifyEnv{t: t, svc: svc, store: store, chat: chat, smtp: mx, producer: producer, web: cfg.PublicURL, dir: dir}
}

func (e *notifyEnv) publish(typ ingest.Type, site, conv string, actor ingest.Actor, payload any) {
	e.t.Helper()
	ev, err := ingest.New(typ, site, conv, actor, time.Now(), payload)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.producer.Publish(context.Background(), ev); err != nil {
		e.t.Fatal(err)
	}
}

var agentActor = ingest.Actor{Role: ingest.RoleAgent, ID: "u-ada"}

// agentSays records an agent's message in the stand-in chat and publishes it.
func (e *notifyEnv) agentSays(site, conv string, seq int64, text string) {
	e.chat.say(conv, Line{Seq: seq, Role: "agent", Name: "Ada", Text: text, At: time.Now()})
	e.publish(ingest.MessageSent, site, conv, agentActor, &ingest.MessageSentPayload{MessageID: ingest.NewID(), Seq: seq, Kind: ingest.KindText, Text: text})
}

func (e *notifyEnv) conversation(site, conv, email string) {
	e.chat.mu.Lock()
	e.chat.contacts[conv] = Contact{SiteID: site, VisitorID: "v-" + conv, Name: "Ana Lima", Email: email, Lang: "es"}
	e.chat.mu.Unlock()
	e.chat.say(conv, Line{Seq: 1, Role: "visitor", Text: "¿Dónde está mi pedido?", At: time.Now()})
	e.publish(ingest.ConversationStarted, site, conv, ingest.Actor{Role: ingest.RoleVisitor, ID: "v-" + conv},
		&ingest.ConversationStartedPayload{Channel: ingest.ChannelWidget, VisitorID: "v-" + conv, Email: email})
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var replyAddress = regexp.MustCompile(`reply\+[a-z0-9]{42}@shop\.test`)

// TestUnreadReplyIsMailedAndAnsweredByMail: an agent's reply the visitor
// did not read within the delay arrives by email through a real SMTP
// server, in the visitor's language, with the site's name, a link back,
// the unsubscribe headers and a thread id; a reply read in time is not
// mailed; the visitor's answer by mail lands in the conversation, from
// the visitor's own address only.
func TestUnreadReplyIsMailedAndAnsweredByMail(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := startNotify(t, backend, nil)
		conv, read, quiet := ingest.NewID(), ingest.NewID(), ingest.NewID()
		e.conversation("s1", conv, "ana@example.com")
		e.conversation("s1", read, "bea@example.com")
		e.conversation("s2", quiet, "cy@example.com")
		e.agentSays("s1", conv, 2, "Tu pedido sale hoy.")
		e.agentSays("s1", read, 2, "Ya está.")
		e.publish(ingest.MessageRead, "s1", read, ingest.Actor{Role: ingest.RoleVisitor, ID: "v-" + read}, &ingest.MessageReadPayload{UpToSeq: 2})
		e.agentSays("s2", quiet, 2, "Site with replies off.")

		waitFor(t, 15*time.Second, "the reply by email", func() bool { return len(e.smtp.Messages()) >= 1 })
		time.Sleep(600 * time.Millisecond) // the read and the disabled site send nothing
		mails := e.smtp.Messages()
		if len(mails) != 1 {
			t.Fatalf("got %d mails, want only the unread reply's", len(mails))
		}
		m := mails[0]
		h := m.Header
		subject := m.Subject()
		from, _ := mail.ParseAddress(h.Get("From"))
		checks := map[string]bool{
			"envelope":        m.From == "support@shop.test" && len(m.To) == 1 && m.To[0] == "ana@example.com",
			"from name":       from != nil && from.Name == "Tienda" && from.Address == "support@shop.test",
			"to":              strings.Contains(h.Get("To"), "ana@example.com"),
			"subject":         subject == "Tienda: nueva respuesta en tu conversación",
			"text":            strings.Contains(m.Text, "Ada respondió en tu conversación:") && strings.Contains(m.Text, "Tu pedido sale hoy."),
			"link back":       strings.Contains(m.Text, "https://shop.example/checkout#parley_resume=token-"+conv),
			"reply hint":      strings.Contains(m.Text, "También puedes contestar"),
			"footer":          strings.Contains(m.Text, "Tienda SL, Calle Mayor 1, Madrid"),
			"unsubscribe":     strings.HasPrefix(h.Get("List-Unsubscribe"), "<"+e.web+"/email/unsubscribe?t=") && h.Get("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click",
			"thread":          h.Get("References") == "<conversation."+conv+"@shop.test>" && h.Get("In-Reply-To") == h.Get("References"),
			"message id":      strings.HasSuffix(h.Get("Message-ID"), "@shop.test>"),
			"reply-to":        replyAddress.MatchString(h.Get("Reply-To")),
			"auto-submitted":  h.Get("Auto-Submitted") == "auto-generated",
			"html with color": strings.Contains(string(m.Raw), "text/html") && strings.Contains(string(m.Raw), "#0f766e"),
			"date":            h.Get("Date") != "",
		}
		for name, ok := range checks {
			if !ok {
				t.Errorf("mail check %q failed:\n%s", name, m.Raw)
			}
		}

		// A second reply goes out in the same thread.
		e.agentSays("s1", conv, 3, "Número de seguimiento: AB123.")
		waitFor(t, 15*time.Second, "the second reply", func() bool { return len(e.smtp.Messages()) == 2 })
		second := e.smtp.Messages()[1]
		if second.Header.Get("References") != h.Get("References") || second.Header.Get("Message-ID") == h.Get("Message-ID") ||
			!strings.Contains(second.Text, "AB123") || strings.Contains(second.Text, "Tu pedido sale hoy.") {
			t.Fatalf("second mail is not the next one in the thread:\n%s", second.Raw)
		}

		// The visitor answers by email, quoting the mail.
		to := replyAddress.FindString(h.Get("Reply-To"))
		addr := e.svc.InboundAddr()
		if err := sendAnswer(t, addr, "Ana Lima <ANA@example.com>", to, "Perfecto, gracias.\n\nOn Tue, Ada wrote:\n> Tu pedido sale hoy."); err != nil {
			t.Fatalf("answer by mail: %v", err)
		}
		e.chat.mu.Lock()
		posted := append([]string(nil), e.chat.posted...)
		e.chat.mu.Unlock()
		if len(posted) != 1 || !strings.HasSuffix(posted[0], "|Perfecto, gracias.") {
			t.Fatalf("posted %q", posted)
		}
		var se *smtp.SMTPError
		if err := sendAnswer(t, addr, "mallory@example.com", to, "Hi there"); !errors.As(err, &se) || se.Code != 550 {
			t.Fatalf("answer from a stranger: %v", err)
		}
		if err := sendAnswer(t, addr, "ana@example.com", "reply+"+strings.Repeat("0", 42)+"@shop.test", "Hi"); !errors.As(err, &se) || se.Code != 550 {
			t.Fatalf("answer to a forged address: %v", err)
		}

		// Unsubscribe: the page asks in Spanish, the one-click POST ends the mail.
		link := strings.Trim(h.Get("List-Unsubscribe"), "<>")
		res, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(page), "¿Dejar de enviar correos de Tienda a ana@example.com?") {
			t.Fatalf("unsubscribe page %d: %s", res.StatusCode, page)
		}
		res, err = http.PostForm(link, url.Values{"List-Unsubscribe": {"One-Click"}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("one-click unsubscribe: %d", res.StatusCode)
		}
		e.agentSays("s1", conv, 4, "¿Algo más?")
		time.Sleep(time.Second)
		if n := len(e.smtp.Messages()); n != 2 {
			t.Fatalf("%d mails after unsubscribing, want still 2", n)
		}
	})
}

// TestBadSMTPServerKeepsMailQueued: a server that refuses for a while
// (temporary errors, then down) leaves the mail queued and retried until
// it takes it, once; a permanent refusal fails the mail for good, visible
// to admins.
func TestBadSMTPServerKeepsMailQueued(t *testing.T) {
	e := startNotify(t, "sqlite", nil)
	e.smtp.Refuse(&smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	conv := ingest.NewID()
	e.conversation("s1", conv, "ana@example.com")
	e.agentSays("s1", conv, 2, "Hola")
	waitFor(t, 15*time.Second, "three refused tries", func() bool { return e.smtp.Attempts() >= 3 })
	pending, err := e.store.Mails(context.Background(), MailPending, 10)
	if err != nil || len(pending) != 1 || !strings.Contains(pending[0].Error, "451") || pending[0].Tries < 2 {
		t.Fatalf("queued mail %+v %v", pending, err)
	}
	e.smtp.Refuse(nil)
	waitFor(t, 15*time.Second, "the mail once the server takes it", func() bool { return len(e.smtp.Messages()) == 1 })
	time.Sleep(300 * time.Millisecond)
	if n := len(e.smtp.Messages()); n != 1 {
		t.Fatalf("delivered %d times", n)
	}

	e.smtp.Refuse(&smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	bad := ingest.NewID()
	e.conversation("s1", bad, "nobody@example.com")
	e.agentSays("s1", bad, 2, "Hola")
	waitFor(t, 15*time.Second, "the permanent refusal recorded", func() bool {
		failed, _ := e.store.Mails(context.Background(), MailFailed, 10)
		return len(failed) == 1 && strings.Contains(failed[0].Error, "550")
	})
}

// TestSMTPServerDownThenUp: with the server down, the mail waits; when the
// server listens again it is sent.
func TestSMTPServerDownThenUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	e := startNotify(t, "sqlite", func(c *Config) { c.SMTP.Addr = addr })
	conv := ingest.NewID()
	e.conversation("s1", conv, "ana@example.com")
	e.agentSays("s1", conv, 2, "Hola de nuevo")
	waitFor(t, 15*time.Second, "a refused connection recorded", func() bool {
		p, _ := e.store.Mails(context.Background(), MailPending, 10)
		return len(p) == 1 && strings.Contains(p[0].Error, "connection refused")
	})
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	mx := mailtest.Serve(ln)
	t.Cleanup(mx.Close)
	waitFor(t, 15*time.Second, "the mail after the server came back", func() bool { return len(mx.Messages()) == 1 })
	if !strings.Contains(mx.Messages()[0].Text, "Hola de nuevo") {
		t.Fatalf("mail %s", mx.Messages()[0].Raw)
	}
}

// TestTranscriptOnResolveAndDigest: a site that sends transcripts mails one
// when a conversation is resolved; an agent away longer than their digest
// setting gets a digest of what waits.
func TestTranscriptOnResolveAndDigest(t *testing.T) {
	e := startNotify(t, "sqlite", func(c *Config) { c.DigestEvery = time.Hour })
	site := e.chat.sites["s1"]
	site.TranscriptOnResolve = true
	e.chat.sites["s1"] = site
	conv := ingest.NewID()
	e.conversation("s1", conv, "ana@example.com")
	e.chat.say(conv, Line{Seq: 2, Role: "agent", Name: "Ada", Text: "Resuelto.", At: time.Now()})
	e.publish(ingest.ConversationResolved, "s1", conv, agentActor, &ingest.ConversationResolvedPayload{Reason: "agent"})
	waitFor(t, 15*time.Second, "the transcript", func() bool { return len(e.smtp.Messages()) == 1 })
	tr := e.smtp.Messages()[0]
	subject := tr.Subject()
	if subject != "Tu conversación con Tienda" || !strings.Contains(tr.Text, "Tú") || !strings.Contains(tr.Text, "¿Dónde está mi pedido?") || !strings.Contains(tr.Text, "Resuelto.") {
		t.Fatalf("transcript %q:\n%s", subject, tr.Text)
	}

	ctx := context.Background()
	ada, err := e.dir.CreateUser(ctx, "ada@shop.test", "Ada", "password-123", []access.Role{access.Agent}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetPreferences(ctx, ada.ID, Preferences{DigestAfterMinutes: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The waiting conversation is stored before Ada goes away: presence
	// and conversation events come through different consumers, and a
	// digest check that found nothing waiting would look again only a
	// minute later.
	waiting := ingest.NewID()
	e.conversation("s1", waiting, "zoe@example.com")
	e.publish(ingest.ConversationQueued, "s1", waiting, ingest.Actor{Role: ingest.RoleSystem, ID: "router"}, &ingest.ConversationQueuedPayload{Reason: "new", Position: 1})
	waitFor(t, 15*time.Second, "the queued conversation stored", func() bool {
		w, _ := e.store.Waiting(ctx, ada.ID, 10)
		return len(w) == 1
	})
	away := time.Now().Add(-2 * time.Minute) // presence says when it changed: two minutes ago
	for _, p := range []struct {
		status string
		at     time.Time
	}{{"online", away.Add(-time.Hour)}, {"away", away}} {
		ev, _ := ingest.New(ingest.AgentPresence, "*", "agent:"+ada.ID, ingest.Actor{Role: ingest.RoleAgent, ID: ada.ID}, p.at, &ingest.AgentPresencePayload{Status: p.status})
		if err := e.producer.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 15*time.Second, "the digest", func() bool { return len(e.smtp.Messages()) == 2 })
	d := e.smtp.Messages()[1]
	if d.To[0] != "ada@shop.test" || !strings.Contains(d.Text, "/app/conversations/"+waiting) || d.Header.Get("List-Unsubscribe") == "" {
		t.Fatalf("digest:\n%s", d.Raw)
	}
}
