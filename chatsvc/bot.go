package chatsvc

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/parleychat/parley/egress"
	"github.com/parleychat/parley/ingest"
)

// BotRequest is a visitor message for the bot to answer.
type BotRequest struct {
	SiteID         string `json:"site_id"`
	ConversationID string `json:"conversation_id"`
	VisitorID      string `json:"visitor_id"`
	Text           string `json:"text"`
	First          bool   `json:"first"`
	// Lang is the language the visitor's widget speaks (docs/widget.md);
	// answers should be in it.
	Lang     string      `json:"lang"`
	Settings BotSettings `json:"-"`
	secret   string
	site     *SiteSettings // catalog overrides; nil means the shipped texts
}

// BotReply is the bot's answer; Handover sends the conversation to the
// human queue (after Text, when set).
type BotReply struct {
	Text     string `json:"text"`
	Handover bool   `json:"handover"`
}

// BotResponder answers visitor messages for sites whose bot is enabled.
type BotResponder interface {
	Respond(ctx context.Context, req BotRequest) (BotReply, error)
}

// RulesBot answers from the site's FAQ and hands over on request or when
// it has no answer.
type RulesBot struct{}

// Respond implements BotResponder. It answers in req.Lang: FAQ entries of
// that language (or of none) and the catalog's hand-over texts.
func (RulesBot) Respond(ctx context.Context, req BotRequest) (BotReply, error) {
	texts := req.site
	if texts == nil {
		texts = &SiteSettings{Bot: req.Settings}
	}
	lang := req.Lang
	if lang == "" {
		lang = texts.defaultLanguage()
	}
	text := normalize(req.Text)
	for _, p := range texts.handoverPhrases(lang) {
		if containsPhrase(text, normalize(p)) {
			return BotReply{Text: texts.visitorText(lang, "bot.handover"), Handover: true}, nil
		}
	}
	for _, f := range req.Settings.FAQ {
		if f.Language != "" && f.Language != lang {
			continue
		}
		for _, k := range f.Keywords {
			if containsPhrase(text, normalize(k)) {
				return BotReply{Text: f.Answer}, nil
			}
		}
	}
	return BotReply{Text: texts.visitorText(lang, "bot.fallback"), Handover: true}, nil
}

// normalize lowercases and turns punctuation into single spaces.
func normalize(s string) string {
	var b strings.Builder
	space := true
	for _, r := range strings.ToLower(s) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
			space = false
		} else if !space {
			b.WriteByte(' ')
			space = true
		}
	}
	return strings.TrimSpace(b.String())
}

// containsPhrase matches whole words.
func containsPhrase(text, phrase string) bool {
	if phrase == "" {
		return false
	}
	return strings.Contains(" "+text+" ", " "+phrase+" ")
}

// WebhookBot asks an external HTTP endpoint: POST JSON BotRequest, signed
// with X-Parley-Signature = hex(HMAC-SHA256(site's webhook secret, body));
// the answer is JSON BotReply. The request goes through egress: no
// internal addresses (unless the operator allowed the host), no redirects.
type WebhookBot struct {
	// Client sends the request; nil uses an egress client that refuses
	// every internal address.
	Client *http.Client
}

// Respond implements BotResponder.
func (w WebhookBot) Respond(ctx context.Context, req BotRequest) (BotReply, error) {
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, webhookTimeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.Settings.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return BotReply{}, fmt.Errorf("bot webhook: %w", err)
	}
	mac := hmac.New(sha256.New, []byte(req.secret))
	mac.Write(body)
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("X-Parley-Signature", hex.EncodeToString(mac.Sum(nil)))
	client := w.Client
	if client == nil {
		client = (&egress.Policy{}).Client(webhookTimeout)
	}
	resp, err := client.Do(hr)
	if err != nil {
		return BotReply{}, fmt.Errorf("bot webhook %s: %w", req.Settings.WebhookURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return BotReply{}, fmt.Errorf("bot webhook %s: status %d", req.Settings.WebhookURL, resp.StatusCode)
	}
	var reply BotReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&reply); err != nil {
		return BotReply{}, fmt.Errorf("bot webhook %s: decode reply: %w", req.Settings.WebhookURL, err)
	}
	return reply, nil
}

// webhookTimeout bounds one bot webhook call.
const webhookTimeout = 5 * time.Second

type botJob struct {
	SiteID, ConversationID, VisitorID, Text string
	First                                   bool
}

// botRunner answers bot conversations off the writer's path.
type botRunner struct {
	s    *Service
	jobs chan botJob
}

func newBotRunner(s *Service) *botRunner {
	return &botRunner{s: s, jobs: make(chan botJob, 4096)}
}

func (b *botRunner) enqueue(j botJob) {
	select {
	case b.jobs <- j:
	default:
		// Overloaded: hand over rather than leave the visitor unanswered.
		b.s.writer.submit(context.Background(), &op{fn: b.s.botReplyOp(j, BotReply{Handover: true})})
	}
}

func (b *botRunner) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-b.jobs:
					b.answer(ctx, j)
				}
			}
		}()
	}
	wg.Wait()
}

func (b *botRunner) answer(ctx context.Context, j botJob) {
	site, ok := b.s.sites.get(j.SiteID)
	if !ok {
		return
	}
	lang := b.s.visitorLang(site, j.VisitorID)
	req := BotRequest{SiteID: j.SiteID, ConversationID: j.ConversationID, VisitorID: j.VisitorID, Text: j.Text,
		First: j.First, Lang: lang, Settings: site.Settings.Bot, secret: site.WebhookSecret, site: &site.Settings}
	var responder BotResponder = RulesBot{}
	switch {
	case b.s.cfg.Bot != nil:
		responder = b.s.cfg.Bot
	case site.Settings.Bot.WebhookURL != "":
		responder = WebhookBot{Client: b.s.webhookClient}
	}
	reply, err := responder.Respond(ctx, req)
	if err != nil {
		b.s.log.Warn("bot failed; handing over", "conversation", j.ConversationID, "err", err)
		reply = BotReply{Text: site.Settings.visitorText(lang, "bot.failed"), Handover: true}
	}
	b.s.writer.submit(ctx, &op{fn: b.s.botReplyOp(j, reply)})
}

// botReplyOp posts the bot's greeting (first message) and answer, and
// hands over to the queue when asked.
func (s *Service) botReplyOp(j botJob, reply BotReply) func(t *wtx) error {
	return func(t *wtx) error {
		c, err := t.conv(j.ConversationID)
		if err != nil {
			return err
		}
		if c.Routing != RoutingBot || c.Status == StatusResolved {
			return nil // a human took over meanwhile
		}
		site, ok := s.sites.get(c.SiteID)
		if !ok {
			return nil
		}
		t.put(c)
		author := s.botAuthor(site)
		var texts []string
		if greeting := site.Settings.texts(s.visitorLang(site, c.VisitorID)).BotGreeting; j.First && greeting != "" {
			texts = append(texts, greeting)
		}
		if reply.Text != "" {
			texts = append(texts, reply.Text)
		}
		for _, text := range texts {
			if n := len([]rune(text)); n > s.cfg.Limits.MaxMessageChars {
				text = string([]rune(text)[:s.cfg.Limits.MaxMessageChars])
			}
			m, err := t.insertMessage(c, Message{Author: author, Kind: ingest.KindText, Text: text, Status: MsgVisible}, nil)
			if err != nil {
				return err
			}
			t.deliver(c, m, nil)
		}
		if reply.Handover {
			if err := t.enqueue(c, "handover"); err != nil {
				return err
			}
			t.announce(c)
		}
		return nil
	}
}
