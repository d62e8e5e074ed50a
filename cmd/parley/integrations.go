package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/parleychat/parley/chatsvc"
	"github.com/parleychat/parley/notifications"
	"github.com/parleychat/parley/webhooks"
)

// wireIntegrations adds the components that connect Parley to the outside
// world to a node running chat: outgoing event webhooks and (notifications)
// email continuity. They run with the chat role because they answer for
// chat's sites and conversations (site checks, resume links, replies by
// email) through chat's own methods; their consumer groups spread their
// work across chat nodes like any Kafka consumer group.
func wireIntegrations(ctx context.Context, n *node, chat *chatsvc.Service) error {
	store, err := openWebhookStore(ctx, n)
	if err != nil {
		return err
	}
	hooks, err := webhooks.New(webhooks.Config{
		Store: store, Brokers: n.brokers, DeadLetter: n.producer, Guard: n.guard,
		Egress: n.cfg.egressPolicy(), Sites: chatSites{chat},
		Logger: n.log.With("component", "webhooks"), Registerer: n.reg,
	})
	if err != nil {
		return fmt.Errorf("start webhooks: %w", err)
	}
	n.add("webhooks", hooks)

	nstore, err := openNotificationStore(ctx, n)
	if err != nil {
		return err
	}
	secret, err := n.secret()
	if err != nil {
		return err
	}
	notify, err := notifications.New(ctx, notifications.Config{
		Store: nstore, Chat: notifyChat{chat}, Guard: n.guard, Brokers: n.brokers, DeadLetter: n.producer,
		SMTP: n.cfg.Email.SMTP, PublicURL: n.url, Secret: secret, ReplyDelay: n.cfg.Email.ReplyDelay,
		Logger: n.log.With("component", "notifications"), Registerer: n.reg,
	})
	if err != nil {
		return fmt.Errorf("start notifications: %w", err)
	}
	n.add("notifications", notify)
	return nil
}

// openNotificationStore opens notifications' store: PostgreSQL's
// notifications schema with --postgres, otherwise notifications.db.
func openNotificationStore(ctx context.Context, n *node) (notifications.Store, error) {
	if n.cfg.Postgres != "" {
		pool, err := n.pool(ctx, notifications.PostgresSchema)
		if err != nil {
			return nil, err
		}
		return notifications.OpenPostgres(ctx, pool)
	}
	db, err := n.db("notifications")
	if err != nil {
		return nil, err
	}
	return notifications.OpenSQLite(ctx, db)
}

// notifyChat adapts chat to what notifications needs.
type notifyChat struct{ chat *chatsvc.Service }

func (c notifyChat) Contact(ctx context.Context, convID string) (notifications.Contact, error) {
	ct, err := c.chat.ConversationContact(ctx, convID)
	if err != nil {
		return notifications.Contact{}, err
	}
	return notifications.Contact{SiteID: ct.SiteID, VisitorID: ct.VisitorID, Name: ct.Name, Email: ct.Email, Lang: ct.Lang}, nil
}

func (c notifyChat) Transcript(ctx context.Context, convID string) ([]notifications.Line, error) {
	msgs, err := c.chat.VisitorTranscript(ctx, convID)
	if err != nil {
		return nil, err
	}
	out := make([]notifications.Line, 0, len(msgs))
	for _, m := range msgs {
		text := m.Text
		for _, a := range m.Attachments {
			text = strings.TrimSpace(text + "\n[" + a.Name + "]")
		}
		out = append(out, notifications.Line{Seq: m.Seq, Role: m.Author.Role, Name: m.Author.Name, Text: text, At: m.CreatedAt.Time})
	}
	return out, nil
}

func (c notifyChat) ResumeLink(ctx context.Context, convID string) (string, bool, error) {
	return c.chat.ResumeLink(ctx, convID)
}

func (c notifyChat) PostVisitorMessage(ctx context.Context, convID, clientID, text string) error {
	_, err := c.chat.PostVisitorMessage(ctx, convID, clientID, text)
	return err
}

func (c notifyChat) Site(siteID string) (notifications.Site, bool) {
	l, ok := c.chat.SiteLookOf(siteID)
	if !ok {
		return notifications.Site{}, false
	}
	return notifications.Site{
		ID: l.ID, Name: l.Name, Color: l.Color, DisableReplies: l.Email.DisableReplies, TranscriptOnResolve: l.Email.TranscriptOnResolve,
		FromName: l.Email.FromName, Footer: l.Email.Footer, Text: l.Text,
	}, true
}

func (c notifyChat) IsNotFound(err error) bool { return chatsvc.ErrorCode(err) == chatsvc.CodeNotFound }

// IsRefusal: chat refused the message itself (a ban, a rule, a limit), so
// the sender must not retry it; anything else is chat's own failure.
func (c notifyChat) IsRefusal(err error) bool {
	code := chatsvc.ErrorCode(err)
	return code != "" && code != chatsvc.CodeInternal && code != chatsvc.CodeRateLimited
}

// openWebhookStore opens webhooks' store: PostgreSQL's webhooks schema
// with --postgres, otherwise webhooks.db under the data directory.
func openWebhookStore(ctx context.Context, n *node) (webhooks.Store, error) {
	if n.cfg.Postgres != "" {
		pool, err := n.pool(ctx, webhooks.PostgresSchema)
		if err != nil {
			return nil, err
		}
		return webhooks.OpenPostgres(ctx, pool)
	}
	db, err := n.db("webhooks")
	if err != nil {
		return nil, err
	}
	return webhooks.OpenSQLite(ctx, db)
}

// chatSites tells integrations which sites exist.
type chatSites struct{ chat *chatsvc.Service }

func (s chatSites) SiteExists(id string) bool {
	_, ok := s.chat.Site(id)
	return ok
}
