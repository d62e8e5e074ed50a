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

	"github.com/parleychat/parley/ingest"
)

// BotRequest is a visitor message for the bot to answer.
type BotRequest struct {
	SiteID         string      `json:"site_id"`
	ConversationID string      `json:"conversation_id"`
	VisitorID      string      `json:"visitor_id"`
	Text           string      `json:"text"`
	First          bool        `json:"first"`
	Settings       BotSettings `json:"-"`
	secret         string
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

var defaultHandover = []string{"talk to a human", "human", "agent", "real person", "someone"}

// Respond implements BotResponder.
func (RulesBot) Respond(ctx context.Context, req BotRequest) (BotReply, error) {
	text := normalize(req.Text)
	phrases := req.Settings.HandoverPhrases
	if len(phrases) == 0 {
		phrases = defaultHandover
	}
	for _, p := range phrases {
		if containsPhrase(text, normalize(p)) {
			return BotReply{Text: "Sure, I am connecting you with a human.", Handover: true}, nil
		}
	}
	for _, f := range req.Settings.FAQ {
		for _, k := range f.Keywords {
			if containsPhrase(text, normalize(k)) {
				return BotReply{Text: f.Answer}, nil
			}
		}
	}
	return BotReply{Text: "I do not know that one yet, so I am bringing in a human.", Handover: true}, nil
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
// with X-Parley-Signature = hex(HMAC-SHA256(site secret, body)); the answer
// is JSON BotReply.
type WebhookBot struct {
	Client *http.Client
}

// Respond implements BotResponder.
func (w WebhookBot) Respond(ctx context.Context, req BotRequest) (BotReply, error) {
	body, _ := json.Marshal(req)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
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
		client = http.DefaultClient
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
	req := BotRequest{SiteID: j.SiteID, ConversationID: j.ConversationID, VisitorID: j.VisitorID, Text: j.Text,
		First: j.First, Settings: site.Settings.Bot, secret: site.Secret}
	var responder BotResponder = RulesBot{}
	switch {
	case b.s.cfg.Bot != nil:
		responder = b.s.cfg.Bot
	case site.Settings.Bot.WebhookURL != "":
		responder = WebhookBot{}
	}
	reply, err := responder.Respond(ctx, req)
	if err != nil {
		b.s.log.Warn("bot failed; handing over", "conversation", j.ConversationID, "err", err)
		reply = BotReply{Text: "Let me get you a human.", Handover: true}
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
		if j.First && site.Settings.Bot.Greeting != "" {
			texts = append(texts, site.Settings.Bot.Greeting)
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
