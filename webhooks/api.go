package webhooks

import (
	"bytes"
	"encoding/json"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// Mount registers the webhook administration API (admins only):
//
//	GET    /api/webhooks/endpoints                  list (?site_id=), with delivery counts
//	POST   /api/webhooks/endpoints                  create {site_id, url, events, description, enabled}; the answer holds the secret
//	GET    /api/webhooks/endpoints/:id              one endpoint with counts
//	PUT    /api/webhooks/endpoints/:id              change it
//	DELETE /api/webhooks/endpoints/:id              delete it and its deliveries
//	POST   /api/webhooks/endpoints/:id/secret       rotate the secret; the answer holds the new one
//	POST   /api/webhooks/endpoints/:id/test         send a webhook.test event now and report the answer
//	GET    /api/webhooks/endpoints/:id/deliveries   deliveries (?status=pending|delivered|dead), newest first
//	POST   /api/webhooks/deliveries/:id/retry       send a dead delivery again
func (s *Service) Mount(r fiber.Router) {
	admin := s.cfg.Guard.Require(access.Admin)
	r.Get("/api/webhooks/endpoints", admin, s.listEndpoints)
	r.Post("/api/webhooks/endpoints", admin, s.createEndpoint)
	r.Get("/api/webhooks/endpoints/:id", admin, s.getEndpoint)
	r.Put("/api/webhooks/endpoints/:id", admin, s.updateEndpoint)
	r.Delete("/api/webhooks/endpoints/:id", admin, s.deleteEndpoint)
	r.Post("/api/webhooks/endpoints/:id/secret", admin, s.rotateSecret)
	r.Post("/api/webhooks/endpoints/:id/test", admin, s.testEndpoint)
	r.Get("/api/webhooks/endpoints/:id/deliveries", admin, s.listDeliveries)
	r.Post("/api/webhooks/deliveries/:id/retry", admin, s.retryDelivery)
}

// endpointView is an endpoint as the API shows it: no secret unless just
// created or rotated, and how its deliveries stand.
type endpointView struct {
	Endpoint
	Counts map[string]int `json:"counts"`
}

func apiError(c *fiber.Ctx, status int, msg string) error {
	return c.Status(status).JSON(fiber.Map{"error": msg})
}

func (s *Service) storeErr(c *fiber.Ctx, err error) error {
	if errors.Is(err, ErrNotFound) {
		return apiError(c, fiber.StatusNotFound, "not found")
	}
	s.log.Error("webhooks request failed", "method", c.Method(), "path", c.Path(), "err", err)
	return apiError(c, fiber.StatusInternalServerError, "webhook store failed; retry later")
}

func (s *Service) view(c *fiber.Ctx, e Endpoint, showSecret bool) (endpointView, error) {
	counts, err := s.store.Counts(c.UserContext(), e.ID)
	if err != nil {
		return endpointView{}, err
	}
	e.SecretHint = secretHint(e.Secret)
	if !showSecret {
		e.Secret = ""
	}
	return endpointView{Endpoint: e, Counts: counts}, nil
}

func (s *Service) listEndpoints(c *fiber.Ctx) error {
	list, err := s.store.Endpoints(c.UserContext(), c.Query("site_id"))
	if err != nil {
		return s.storeErr(c, err)
	}
	out := make([]endpointView, 0, len(list))
	for _, e := range list {
		v, err := s.view(c, e, false)
		if err != nil {
			return s.storeErr(c, err)
		}
		out = append(out, v)
	}
	return c.JSON(fiber.Map{"endpoints": out})
}

// decode reads a JSON body strictly.
func decode(c *fiber.Ctx, into any) error {
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return invalid("body must be a JSON endpoint {site_id, url, events, description, enabled}: %v", err)
	}
	return nil
}

// checkInput validates an endpoint's input, its site and (through the
// egress policy) its URL.
func (s *Service) checkInput(c *fiber.Ctx, in *EndpointInput) error {
	if err := decode(c, in); err != nil {
		return err
	}
	if err := in.clean(); err != nil {
		return err
	}
	if s.cfg.Sites != nil && !s.cfg.Sites.SiteExists(in.SiteID) {
		return invalid("site %s does not exist", in.SiteID)
	}
	if err := s.cfg.Egress.CheckURL(c.UserContext(), in.URL); err != nil {
		return invalid("url: %v", err)
	}
	return nil
}

func (s *Service) createEndpoint(c *fiber.Ctx) error {
	var in EndpointInput
	if err := s.checkInput(c, &in); err != nil {
		return apiError(c, fiber.StatusBadRequest, err.Error())
	}
	me, _ := access.UserOf(c)
	now := time.Now().UTC().Truncate(time.Millisecond)
	e := Endpoint{
		ID: ingest.NewID(), SiteID: in.SiteID, URL: in.URL, Events: in.Events, Description: in.Description,
		Enabled: in.Enabled == nil || *in.Enabled, CreatedBy: me.ID, CreatedAt: now, UpdatedAt: now, Secret: newSecret(),
	}
	if err := s.store.InsertEndpoint(c.UserContext(), e); err != nil {
		return s.storeErr(c, err)
	}
	s.log.Info("webhook endpoint created", "endpoint", e.ID, "site", e.SiteID, "events", e.Events, "by", me.ID)
	v, err := s.view(c, e, true)
	if err != nil {
		return s.storeErr(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(v)
}

func (s *Service) getEndpoint(c *fiber.Ctx) error {
	e, err := s.store.Endpoint(c.UserContext(), c.Params("id"))
	if err != nil {
		return s.storeErr(c, err)
	}
	v, err := s.view(c, e, false)
	if err != nil {
		return s.storeErr(c, err)
	}
	return c.JSON(v)
}

func (s *Service) updateEndpoint(c *fiber.Ctx) error {
	ctx := c.UserContext()
	e, err := s.store.Endpoint(ctx, c.Params("id"))
	if err != nil {
		return s.storeErr(c, err)
	}
	var in EndpointInput
	if err := s.checkInput(c, &in); err != nil {
		return apiError(c, fiber.StatusBadRequest, err.Error())
	}
	e.SiteID, e.URL, e.Events, e.Description = in.SiteID, in.URL, in.Events, in.Description
	if in.Enabled != nil {
		e.Enabled = *in.Enabled
	}
	e.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	if err := s.store.UpdateEndpoint(ctx, e); err != nil {
		return s.storeErr(c, err)
	}
	s.forget(e.ID)
	if e.Enabled {
		s.wake()
	}
	v, err := s.view(c, e, false)
	if err != nil {
		return s.storeErr(c, err)
	}
	return c.JSON(v)
}

func (s *Service) deleteEndpoint(c *fiber.Ctx) error {
	if err := s.store.DeleteEndpoint(c.UserContext(), c.Params("id")); err != nil {
		return s.storeErr(c, err)
	}
	s.forget(c.Params("id"))
	me, _ := access.UserOf(c)
	s.log.Info("webhook endpoint deleted", "endpoint", c.Params("id"), "by", me.ID)
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Service) rotateSecret(c *fiber.Ctx) error {
	ctx := c.UserContext()
	secret := newSecret()
	if err := s.store.SetEndpointSecret(ctx, c.Params("id"), secret, time.Now().UTC()); err != nil {
		return s.storeErr(c, err)
	}
	s.forget(c.Params("id"))
	e, err := s.store.Endpoint(ctx, c.Params("id"))
	if err != nil {
		return s.storeErr(c, err)
	}
	v, err := s.view(c, e, true)
	if err != nil {
		return s.storeErr(c, err)
	}
	return c.JSON(v)
}

// testResult is what "send test event" reports.
type testResult struct {
	Delivered  bool   `json:"delivered"`
	Status     int    `json:"status"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	EventID    string `json:"event_id"`
}

// testPayload is the payload of a webhook.test envelope.
type testPayload struct {
	EndpointID string `json:"endpoint_id"`
	Message    string `json:"message"`
}

func (s *Service) testEndpoint(c *fiber.Ctx) error {
	ctx := c.UserContext()
	e, err := s.store.Endpoint(ctx, c.Params("id"))
	if err != nil {
		return s.storeErr(c, err)
	}
	me, _ := access.UserOf(c)
	payload, _ := json.Marshal(testPayload{EndpointID: e.ID, Message: "This is a test event from Parley. Verify its signature, then answer 2xx."})
	ev := ingest.Event{
		ID: ingest.NewID(), Type: TestEventType, Version: 1, OccurredAt: ingest.At(time.Now()), SiteID: e.SiteID,
		ConversationID: "webhook:" + e.ID, Actor: ingest.Actor{Role: ingest.RoleSystem, ID: me.ID}, Payload: payload,
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return s.storeErr(c, err)
	}
	start := time.Now()
	code, err := s.post(ctx, e, ingest.NewID(), ev.ID, TestEventType, body)
	res := testResult{Delivered: err == nil, Status: code, DurationMS: time.Since(start).Milliseconds(), EventID: ev.ID}
	if err != nil {
		res.Error = err.Error()
	}
	return c.JSON(res)
}

func (s *Service) listDeliveries(c *fiber.Ctx) error {
	status := c.Query("status")
	switch status {
	case "", StatusPending, StatusDelivered, StatusDead:
	default:
		return apiError(c, fiber.StatusBadRequest, "status must be pending, delivered or dead")
	}
	ctx := c.UserContext()
	if _, err := s.store.Endpoint(ctx, c.Params("id")); err != nil {
		return s.storeErr(c, err)
	}
	limit := c.QueryInt("limit", 50)
	if limit < 1 || limit > 500 {
		limit = 50
	}
	list, err := s.store.Deliveries(ctx, c.Params("id"), status, limit)
	if err != nil {
		return s.storeErr(c, err)
	}
	if list == nil {
		list = []Delivery{}
	}
	return c.JSON(fiber.Map{"deliveries": list})
}

func (s *Service) retryDelivery(c *fiber.Ctx) error {
	d, err := s.store.Redeliver(c.UserContext(), c.Params("id"), time.Now())
	if errors.Is(err, ErrNotFound) {
		return apiError(c, fiber.StatusNotFound, "no dead delivery "+c.Params("id"))
	}
	if err != nil {
		return s.storeErr(c, err)
	}
	s.wake()
	return c.JSON(d)
}
