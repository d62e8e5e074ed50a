package webhooks

import (
	"context"
	"errors"
	"time"
)

// Store keeps endpoints and their deliveries. Its methods are domain
// operations; all SQL lives in store_sqlite.go (webhooks.db) and
// store_postgres.go (PostgreSQL schema "webhooks"), and store_test.go runs
// one conformance suite on both.
type Store interface {
	// InsertEndpoint stores a new endpoint.
	InsertEndpoint(ctx context.Context, e Endpoint) error
	// UpdateEndpoint replaces an endpoint's site, URL, events, description
	// and enabled flag (ErrNotFound).
	UpdateEndpoint(ctx context.Context, e Endpoint) error
	// SetEndpointSecret replaces an endpoint's signing secret (ErrNotFound).
	SetEndpointSecret(ctx context.Context, id, secret string, at time.Time) error
	// DeleteEndpoint removes an endpoint and its deliveries (ErrNotFound).
	DeleteEndpoint(ctx context.Context, id string) error
	// Endpoint returns one endpoint with its secret (ErrNotFound).
	Endpoint(ctx context.Context, id string) (Endpoint, error)
	// Endpoints lists endpoints with their secrets, of one site or of all
	// when siteID is empty, oldest first.
	Endpoints(ctx context.Context, siteID string) ([]Endpoint, error)

	// EnqueueDeliveries stores pending deliveries, skipping any whose
	// endpoint already has that event (a consumer's redelivery), and
	// returns how many it stored. Deliveries of one lane keep the order
	// of the slice.
	EnqueueDeliveries(ctx context.Context, ds []Delivery) (int, error)
	// ClaimDue leases up to limit pending deliveries that are due at now,
	// each the oldest pending delivery of its lane, until now+lease, so
	// no other dispatcher (of any node) takes them meanwhile.
	ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// RecordAttempt stores an attempt's outcome: delivered, a retry at
	// next, or dead (given up). It ends the lease.
	RecordAttempt(ctx context.Context, id string, a Attempt) error
	// Deliveries lists an endpoint's deliveries in one status (all when
	// empty), newest first.
	Deliveries(ctx context.Context, endpointID, status string, limit int) ([]Delivery, error)
	// Counts returns how many deliveries an endpoint has per status.
	Counts(ctx context.Context, endpointID string) (map[string]int, error)
	// Redeliver makes a dead delivery pending again, due at now, with its
	// attempts and age reset (ErrNotFound when it is not dead).
	Redeliver(ctx context.Context, id string, now time.Time) (Delivery, error)
	// PurgeDone deletes delivered deliveries finished before deliveredBefore
	// and dead ones finished before deadBefore.
	PurgeDone(ctx context.Context, deliveredBefore, deadBefore time.Time) (int64, error)

	Ping(ctx context.Context) error
}

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusDead      = "dead"
)

// Delivery is one event on its way to one endpoint.
type Delivery struct {
	ID         string `json:"id"`
	EndpointID string `json:"endpoint_id"`
	EventID    string `json:"event_id"`
	EventType  string `json:"event_type"`
	// Lane orders deliveries: one endpoint's deliveries of one lane (the
	// event's conversation) go out one at a time, oldest first.
	Lane          string    `json:"lane"`
	Body          []byte    `json:"-"`
	Status        string    `json:"status"`
	Attempts      int       `json:"attempts"`
	NextAt        time.Time `json:"next_at"`
	LastStatus    int       `json:"last_status"`
	LastError     string    `json:"last_error"`
	LastAttemptAt time.Time `json:"last_attempt_at"`
	CreatedAt     time.Time `json:"created_at"`
	DoneAt        time.Time `json:"done_at"`
}

// Attempt is the outcome of one try to deliver.
type Attempt struct {
	At time.Time
	// Code is the receiver's HTTP status (0 when no answer came).
	Code  int
	Error string
	// Status is the delivery's status after the attempt; Next is when a
	// pending delivery is tried again.
	Status string
	Next   time.Time
}

// ErrNotFound marks a missing endpoint or delivery.
var ErrNotFound = errors.New("not found")
