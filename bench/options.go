package bench

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Scenarios lists the scenario names Run accepts.
var Scenarios = []string{"chat", "connections", "pipeline", "ingest"}

// Options configure a run; cmd/parley fills them from flags. Zero values
// take the defaults noted.
type Options struct {
	// URL of the running Parley (loopback only). Default http://127.0.0.1:8080.
	URL string
	// AgentURL, when set, is another chat node of the same deployment the
	// chat scenario's agents connect their sockets to (visitors stay on
	// URL), to measure delivery across nodes.
	AgentURL string
	// Admin signs in to create the run's site and agent accounts: either
	// AdminEmail and AdminPassword, or AdminFile (initial-admin.txt).
	AdminEmail, AdminPassword, AdminFile string
	// JSON prints the summary as JSON on stdout instead of text.
	JSON bool
	// Brokers are Kafka bootstrap brokers (loopback), needed by pipeline and
	// ingest, optional for chat (then every acked message is looked up on Kafka).
	Brokers []string
	// SetupConcurrency bounds sessions, sign-ins and dials in flight.
	// Default 16 (64 for connections).
	SetupConcurrency int

	// chat
	Conversations int           // default 100
	Rate          float64       // messages/s per conversation, split between visitor and agent; default 2
	Duration      time.Duration // send phase; default 10 s
	Agents        int           // agent accounts; 0 = enough to stay under AgentMsgLimit
	AgentMsgLimit float64       // the server's per-agent message rate limit; default 50/s
	Drain         time.Duration // longest wait for in-flight messages after the send phase; default 5 s

	// connections
	Count int           // idle visitor sockets; default 1000
	PerIP int           // visitors per loopback source address; default 25
	Hold  time.Duration // how long to hold them before counting; default 10 s

	// pipeline
	Messages int // messages to send; default 1000 (Rate is then total messages/s, default 100)

	// ingest
	ClickHouse         string // host:port, native protocol
	ClickHouseDatabase string // Parley's analytics database; default parley
	ClickHouseUser     string // default "default"
	ClickHousePassword string
	Events             int // events to load; default 200000
	LoaderTimeout      time.Duration

	// CPUProfile writes the bench process's own CPU profile here.
	CPUProfile string
}

func (o *Options) defaults() {
	if o.URL == "" {
		o.URL = "http://127.0.0.1:8080"
	}
	if o.Conversations <= 0 {
		o.Conversations = 100
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.AgentMsgLimit <= 0 {
		o.AgentMsgLimit = 50
	}
	if o.Drain <= 0 {
		o.Drain = 5 * time.Second
	}
	if o.Count <= 0 {
		o.Count = 1000
	}
	if o.PerIP <= 0 {
		o.PerIP = 25
	}
	if o.Hold <= 0 {
		o.Hold = 10 * time.Second
	}
	if o.Messages <= 0 {
		o.Messages = 1000
	}
	if o.ClickHouseDatabase == "" {
		o.ClickHouseDatabase = "parley"
	}
	if o.ClickHouseUser == "" {
		o.ClickHouseUser = "default"
	}
	if o.Events <= 0 {
		o.Events = 200_000
	}
	if o.LoaderTimeout <= 0 {
		o.LoaderTimeout = 5 * time.Minute
	}
}

// validate checks the options of scenario and returns the parsed URL.
func (o *Options) validate(scenario string) (*url.URL, error) {
	var errs []error
	u, err := checkLoopback(o.URL)
	if err != nil {
		errs = append(errs, err)
	}
	if o.AdminFile == "" && (o.AdminEmail == "" || o.AdminPassword == "") {
		errs = append(errs, errors.New("give --admin-email and --admin-password, or --admin-file DATA/initial-admin.txt"))
	}
	if o.AgentURL != "" {
		if _, err := checkLoopback(o.AgentURL); err != nil {
			errs = append(errs, fmt.Errorf("--agent-url: %w", err))
		}
	}
	for _, b := range o.Brokers {
		if err := checkLoopbackHostPort("--brokers", b); err != nil {
			errs = append(errs, err)
		}
	}
	if o.SetupConcurrency <= 0 {
		o.SetupConcurrency = 16
		if scenario == "connections" {
			o.SetupConcurrency = 64
		}
	}
	switch scenario {
	case "chat":
		if o.Rate <= 0 {
			o.Rate = 2
		}
		if o.Conversations > 200_000 {
			errs = append(errs, fmt.Errorf("--conversations %d is above 200000", o.Conversations))
		}
		if o.Rate > 1000 {
			errs = append(errs, fmt.Errorf("--rate %g messages/s per conversation is above 1000", o.Rate))
		}
		if o.Duration > 24*time.Hour {
			errs = append(errs, fmt.Errorf("--duration %s is above 24h", o.Duration))
		}
	case "connections":
		if o.Count > 1_000_000 {
			errs = append(errs, fmt.Errorf("--count %d is above 1000000", o.Count))
		}
	case "pipeline":
		if o.Rate <= 0 {
			o.Rate = 100
		}
		if len(o.Brokers) == 0 {
			errs = append(errs, errors.New("pipeline needs --brokers (the broker of `parley serve --kafka-port N` is 127.0.0.1:N)"))
		}
		if o.Messages > 10_000_000 {
			errs = append(errs, fmt.Errorf("--messages %d is above 10000000", o.Messages))
		}
	case "ingest":
		if len(o.Brokers) == 0 {
			errs = append(errs, errors.New("ingest needs --brokers (the broker of `parley serve --kafka-port N` is 127.0.0.1:N)"))
		}
		if o.ClickHouse == "" {
			errs = append(errs, errors.New("ingest needs --clickhouse host:port (native protocol; the server runs with the same --clickhouse)"))
		} else if err := checkLoopbackHostPort("--clickhouse", o.ClickHouse); err != nil {
			errs = append(errs, err)
		}
		if o.Events > 50_000_000 {
			errs = append(errs, fmt.Errorf("--events %d is above 50000000", o.Events))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown scenario %q (want one of %v)", scenario, Scenarios))
	}
	return u, errors.Join(errs...)
}
