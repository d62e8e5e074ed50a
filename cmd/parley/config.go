package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/parleychat/parley/egress"
	"github.com/parleychat/parley/sqlstore"
)

// settings is the configuration every role shares. Each field has a flag
// and a PARLEY_* environment variable; a flag given on the command line
// wins over the variable.
type settings struct {
	Addr      string
	PublicURL string
	DataDir   string
	NodeID    string
	LogLevel  string

	Postgres string

	Brokers    string
	KafkaPort  int
	Partitions int
	Retention  time.Duration

	ClickHouseAddr     string
	ClickHouseDatabase string
	ClickHouseUser     string
	ClickHousePassword string

	AnalyticsBatchSize int
	AnalyticsBatchWait time.Duration

	SecureCookies bool
	Pprof         bool
	Demo          bool
	// Fsync makes an ack wait for stable storage (SQLite synchronous=FULL,
	// the embedded broker's synchronous writes).
	Fsync bool

	// EgressAllowHosts are host names outbound webhooks may reach although
	// they are, or resolve to, internal addresses (on-premises bots).
	EgressAllowHosts string
	// StaffRecheck is how often open staff sockets look their session up
	// again (a backstop: session ends reach every node's sockets at once).
	StaffRecheck time.Duration
	// CommitLinger is how long the chat writer may wait for company before
	// a small commit (chatsvc.Config.CommitLinger); 0 turns it off.
	CommitLinger time.Duration

	// Email is the --smtp-* and --email-* configuration (config_email.go).
	Email emailSettings
}

// envBinding ties a flag to its environment variable.
type envBinding struct{ flag, env string }

// flagSet is a flag.FlagSet that also reads PARLEY_* variables.
type flagSet struct {
	*flag.FlagSet
	bindings []envBinding
}

func newFlagSet(name, synopsis string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: parley %s [flags]\n\n%s\n\nFlags (each also read from the environment variable shown):\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func (fs *flagSet) bind(name, env string) { fs.bindings = append(fs.bindings, envBinding{name, env}) }

func (fs *flagSet) str(p *string, name, env, def, usage string) {
	fs.StringVar(p, name, def, usage+" ("+env+")")
	fs.bind(name, env)
}

func (fs *flagSet) integer(p *int, name, env string, def int, usage string) {
	fs.IntVar(p, name, def, usage+" ("+env+")")
	fs.bind(name, env)
}

func (fs *flagSet) duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	fs.DurationVar(p, name, def, usage+" ("+env+")")
	fs.bind(name, env)
}

func (fs *flagSet) boolean(p *bool, name, env string, def bool, usage string) {
	fs.BoolVar(p, name, def, usage+" ("+env+")")
	fs.bind(name, env)
}

// parse reads args, then fills every flag not given on the command line
// from its environment variable. Errors name the variable and the value.
func (fs *flagSet) parse(args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, b := range fs.bindings {
		v, ok := os.LookupEnv(b.env)
		if !ok || v == "" || given[b.flag] {
			continue
		}
		if err := fs.Set(b.flag, v); err != nil {
			return fmt.Errorf("invalid value %q for %s: %v", v, b.env, err)
		}
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see parley %s --help)", fs.Arg(0), fs.Name())
	}
	return nil
}

// envNames lists the variables this flag set reads.
func (fs *flagSet) envNames() []string {
	var out []string
	for _, b := range fs.bindings {
		out = append(out, b.env)
	}
	return out
}

// common registers the flags every long-running role takes.
func (s *settings) common(fs *flagSet, defaultAddr string) {
	host, _ := os.Hostname()
	fs.str(&s.Addr, "addr", "PARLEY_ADDR", defaultAddr, "HTTP listen address (host:port)")
	fs.str(&s.PublicURL, "public-url", "PARLEY_PUBLIC_URL", "", "URL people and widgets reach this server at (default http://ADDR)")
	fs.str(&s.DataDir, "data", "PARLEY_DATA", "./parley-data", "directory for SQLite files, attachments and the embedded broker")
	fs.str(&s.NodeID, "node-id", "PARLEY_NODE_ID", host, "name of this node, unique per process")
	fs.str(&s.LogLevel, "log-level", "PARLEY_LOG_LEVEL", "info", "debug, info, warn or error")
	fs.str(&s.Postgres, "postgres", "PARLEY_POSTGRES", "", "PostgreSQL URL postgres://user:password@host:port/db for chat, moderation and staff state, shared by every node (empty: SQLite files under --data); the password is never logged")
	fs.str(&s.Brokers, "brokers", "PARLEY_BROKERS", "", "Kafka bootstrap brokers, comma separated (empty in serve: embedded broker)")
	fs.integer(&s.Partitions, "partitions", "PARLEY_PARTITIONS", 0, "partitions of each event topic when Parley creates it (0: 1 on the embedded broker, 4 on Kafka)")
	fs.duration(&s.Retention, "retention", "PARLEY_RETENTION", 14*24*time.Hour, "how long topics keep events")
	fs.boolean(&s.SecureCookies, "secure-cookies", "PARLEY_SECURE_COOKIES", false, "mark session cookies Secure (set when served over HTTPS)")
	fs.boolean(&s.Pprof, "pprof", "PARLEY_PPROF", false, "serve Go profiles at /debug/pprof/ (for benchmarks; keep off in production)")
	fs.boolean(&s.Fsync, "fsync", "PARLEY_FSYNC", false, "make every ack wait for stable storage: SQLite commits with synchronous=FULL and the embedded broker fsyncs every batch (survives a power loss; costs throughput, see docs/benchmarks.md); PostgreSQL is synchronous by its own configuration")
	fs.duration(&s.StaffRecheck, "staff-recheck", "PARLEY_STAFF_RECHECK", 15*time.Second, "how often open staff sockets look their session up again, a backstop for a sign-out or role change whose notice a node missed (notices reach every node at once)")
	fs.duration(&s.CommitLinger, "commit-linger", "PARLEY_COMMIT_LINGER", 0, "how long a chat node may hold a small group commit for more messages while several clients are sending: 500us halves the commits and saves about a tenth of the CPU at 1,000 msg/s for about 1 ms more at the median (0: off)")
	fs.str(&s.EgressAllowHosts, "egress-allow-hosts", "PARLEY_EGRESS_ALLOW_HOSTS", "", "host names, comma separated, that bot webhooks may reach although they are or resolve to internal addresses (on-premises bots); everything else internal is refused")
}

// egressPolicy is the outbound-HTTP policy of --egress-allow-hosts.
func (s *settings) egressPolicy() *egress.Policy {
	p := &egress.Policy{}
	for _, h := range strings.Split(s.EgressAllowHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			p.AllowHosts = append(p.AllowHosts, h)
		}
	}
	return p
}

func (s *settings) clickhouse(fs *flagSet) {
	fs.str(&s.ClickHouseAddr, "clickhouse", "PARLEY_CLICKHOUSE", "", "ClickHouse native address host:port (empty: SQLite under --data)")
	fs.str(&s.ClickHouseDatabase, "clickhouse-db", "PARLEY_CLICKHOUSE_DB", "parley", "ClickHouse database")
	fs.str(&s.ClickHouseUser, "clickhouse-user", "PARLEY_CLICKHOUSE_USER", "default", "ClickHouse user")
	fs.str(&s.ClickHousePassword, "clickhouse-password", "PARLEY_CLICKHOUSE_PASSWORD", "", "ClickHouse password (never logged)")
	fs.integer(&s.AnalyticsBatchSize, "analytics-batch", "PARLEY_ANALYTICS_BATCH", 10000, "analytics loader: most events per insert")
	fs.duration(&s.AnalyticsBatchWait, "analytics-wait", "PARLEY_ANALYTICS_WAIT", 200*time.Millisecond, "analytics loader: longest wait to fill a batch")
}

// brokerList splits --brokers.
func (s *settings) brokerList() []string {
	var out []string
	for _, b := range strings.Split(s.Brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// validate checks values whose errors would otherwise surface late.
func (s *settings) validate(needBrokers bool) error {
	var errs []error
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr / PARLEY_ADDR %q is not host:port: %v", s.Addr, err))
	}
	if s.DataDir == "" {
		errs = append(errs, errors.New("--data / PARLEY_DATA is empty"))
	}
	if s.Partitions < 0 || s.Partitions > 1000 {
		errs = append(errs, fmt.Errorf("--partitions / PARLEY_PARTITIONS %d is not between 0 (automatic) and 1000", s.Partitions))
	}
	if s.Retention < time.Minute {
		errs = append(errs, fmt.Errorf("--retention / PARLEY_RETENTION %s is shorter than a minute", s.Retention))
	}
	if s.CommitLinger < 0 || s.CommitLinger > 50*time.Millisecond {
		errs = append(errs, fmt.Errorf("--commit-linger / PARLEY_COMMIT_LINGER %s is not between 0 and 50ms", s.CommitLinger))
	}
	if s.StaffRecheck < time.Second {
		errs = append(errs, fmt.Errorf("--staff-recheck / PARLEY_STAFF_RECHECK %s is shorter than a second", s.StaffRecheck))
	}
	for _, b := range s.brokerList() {
		if _, _, err := net.SplitHostPort(b); err != nil {
			errs = append(errs, fmt.Errorf("--brokers / PARLEY_BROKERS entry %q is not host:port", b))
		}
	}
	if needBrokers && len(s.brokerList()) == 0 {
		errs = append(errs, errors.New("--brokers / PARLEY_BROKERS is required when a role runs alone (only `parley serve` starts an embedded broker)"))
	}
	if s.Postgres != "" {
		if err := sqlstore.ValidatePostgresURL(s.Postgres); err != nil {
			errs = append(errs, fmt.Errorf("--postgres / PARLEY_POSTGRES: %v", err))
		}
	}
	if s.ClickHouseAddr != "" {
		if _, _, err := net.SplitHostPort(s.ClickHouseAddr); err != nil {
			errs = append(errs, fmt.Errorf("--clickhouse / PARLEY_CLICKHOUSE %q is not host:port", s.ClickHouseAddr))
		}
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level / PARLEY_LOG_LEVEL %q is not debug, info, warn or error", s.LogLevel))
	}
	for _, h := range s.egressPolicy().AllowHosts {
		if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err != nil && strings.ContainsAny(h, "/:@ ") {
			errs = append(errs, fmt.Errorf("--egress-allow-hosts / PARLEY_EGRESS_ALLOW_HOSTS entry %q is not a host name (no scheme, port or path)", h))
		}
	}
	if s.PublicURL != "" && !strings.HasPrefix(s.PublicURL, "http://") && !strings.HasPrefix(s.PublicURL, "https://") {
		errs = append(errs, fmt.Errorf("--public-url / PARLEY_PUBLIC_URL %q must start with http:// or https://", s.PublicURL))
	}
	if s.AnalyticsBatchSize < 0 || s.AnalyticsBatchSize > 1_000_000 {
		errs = append(errs, fmt.Errorf("--analytics-batch / PARLEY_ANALYTICS_BATCH %d is not between 1 and 1000000", s.AnalyticsBatchSize))
	}
	errs = append(errs, s.Email.validate()...)
	return errors.Join(errs...)
}

func (s *settings) publicURL(boundAddr string) string {
	if s.PublicURL != "" {
		return strings.TrimRight(s.PublicURL, "/")
	}
	host, port, _ := net.SplitHostPort(boundAddr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Topic partitions when --partitions is 0. On the embedded broker one
// process reads every topic, so partitions spread no work; each one more
// only splits the relay's publishes and the consumers' fetches into
// smaller ones (serve used 7% more CPU at 1,000 msg/s with 4 than with 1,
// docs/benchmarks.md). On Kafka they let several consumers share a group.
const (
	embeddedPartitions = 1
	kafkaPartitions    = 4
)

// topicPartitions is how many partitions the topics Parley creates get.
func (s settings) topicPartitions(embedded bool) int {
	switch {
	case s.Partitions > 0:
		return s.Partitions
	case embedded:
		return embeddedPartitions
	default:
		return kafkaPartitions
	}
}
