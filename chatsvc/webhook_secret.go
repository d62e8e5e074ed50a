package chatsvc

import (
	"context"
	"fmt"
)

// checkWebhookURL refuses a bot webhook URL that is, or resolves to, an
// internal address the operator did not allow (egress.Policy.CheckURL),
// naming the field.
func (s *Service) checkWebhookURL(ctx context.Context, in SiteInput) error {
	u := in.Settings.Bot.WebhookURL
	if u == "" {
		return nil
	}
	if err := s.cfg.Egress.CheckURL(ctx, u); err != nil {
		return validationError{fmt.Errorf("bot.webhook_url: %w", err)}
	}
	return nil
}

// RotateWebhookSecret gives a site a new secret for signing its bot
// webhook requests; the identity secret stays.
func (s *Service) RotateWebhookSecret(ctx context.Context, id string) (Site, error) {
	if err := s.store.SetWebhookSecret(ctx, id, randomHex(32)); err != nil {
		return Site{}, err
	}
	return s.siteChanged(ctx, id)
}

// ensureWebhookSecrets gives sites created before webhook secrets existed
// one of their own, so no webhook is ever signed with the identity secret.
func (s *Service) ensureWebhookSecrets(ctx context.Context) error {
	changed := false
	for _, site := range s.sites.all() {
		if site.WebhookSecret != "" {
			continue
		}
		if err := s.store.SetWebhookSecret(ctx, site.ID, randomHex(32)); err != nil {
			return fmt.Errorf("webhook secret of site %s: %w", site.ID, err)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return s.sites.load(ctx)
}
