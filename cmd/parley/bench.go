package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/parleychat/parley/bench"
)

const benchSynopsis = `Drives a running Parley through its public interfaces (REST and real WebSockets on
loopback) and reports throughput, latency and the server's CPU and memory.

  parley bench chat        --conversations N --rate R --duration D   messages/s, delivery p50/p99/max
  parley bench connections --count N                                 idle visitor sockets, memory per socket
  parley bench pipeline    --brokers 127.0.0.1:P --messages N        send → verdict on Kafka, → analytics API
  parley bench ingest      --brokers … --clickhouse 127.0.0.1:P      loader vs raw clickhouse-go insert

Sign in with --admin-file DATA/initial-admin.txt (or --admin-email/--admin-password).
Progress goes to stderr once a second; the summary to stdout (JSON with --json).
docs/benchmarks.md has the exact commands and the latest figures.`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	scenario := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		scenario, args = args[0], args[1:]
	}
	var o bench.Options
	var brokers, cpuProfile string
	fs := newFlagSet("bench", benchSynopsis)
	fs.SetOutput(stderr)
	fs.str(&o.URL, "url", "PARLEY_BENCH_URL", "http://127.0.0.1:8080", "URL of the running Parley (loopback only)")
	fs.str(&o.AgentURL, "agent-url", "PARLEY_BENCH_AGENT_URL", "", "chat: another chat node of the same deployment for the agents' sockets (visitors stay on --url), to measure delivery across nodes")
	fs.str(&o.AdminEmail, "admin-email", "PARLEY_BENCH_ADMIN_EMAIL", "", "admin account that creates the run's site and agents")
	fs.str(&o.AdminPassword, "admin-password", "PARLEY_ADMIN_PASSWORD", "", "its password")
	fs.str(&o.AdminFile, "admin-file", "PARLEY_BENCH_ADMIN_FILE", "", "read email and password from parley serve's DATA/initial-admin.txt")
	fs.boolean(&o.JSON, "json", "PARLEY_BENCH_JSON", false, "print the summary as JSON")
	fs.str(&brokers, "brokers", "PARLEY_BROKERS", "", "Kafka brokers, comma separated (pipeline, ingest; chat: check every message reached Kafka)")
	fs.integer(&o.SetupConcurrency, "concurrency", "PARLEY_BENCH_CONCURRENCY", 0, "sessions, sign-ins and dials in flight during setup (0: 16, connections 64)")
	fs.integer(&o.Conversations, "conversations", "PARLEY_BENCH_CONVERSATIONS", 100, "chat, pipeline: concurrent conversations")
	fs.FlagSet.Float64Var(&o.Rate, "rate", 0, "chat: messages/s per conversation, half each side (default 2); pipeline: messages/s in total (default 100) (PARLEY_BENCH_RATE)")
	fs.bind("rate", "PARLEY_BENCH_RATE")
	fs.duration(&o.Duration, "duration", "PARLEY_BENCH_DURATION", 10*time.Second, "chat: length of the send phase")
	fs.integer(&o.Agents, "agents", "PARLEY_BENCH_AGENTS", 0, "chat: agent accounts (0: enough to stay under --agent-limit)")
	fs.FlagSet.Float64Var(&o.AgentMsgLimit, "agent-limit", 50, "chat: the server's per-agent message rate limit, messages/s (PARLEY_BENCH_AGENT_LIMIT)")
	fs.bind("agent-limit", "PARLEY_BENCH_AGENT_LIMIT")
	fs.duration(&o.Drain, "drain", "PARLEY_BENCH_DRAIN", 5*time.Second, "longest wait for in-flight messages after sending")
	fs.integer(&o.Count, "count", "PARLEY_BENCH_COUNT", 1000, "connections: idle visitor sockets to open")
	fs.integer(&o.PerIP, "per-ip", "PARLEY_BENCH_PER_IP", 25, "visitors per loopback source address (127.0.0.2, 127.0.0.3, …)")
	fs.duration(&o.Hold, "hold", "PARLEY_BENCH_HOLD", 10*time.Second, "connections: how long to hold the sockets before counting")
	fs.integer(&o.Messages, "messages", "PARLEY_BENCH_MESSAGES", 1000, "pipeline: messages to send")
	fs.str(&o.ClickHouse, "clickhouse", "PARLEY_CLICKHOUSE", "", "ingest: ClickHouse native address host:port (the one parley serve uses)")
	fs.str(&o.ClickHouseDatabase, "clickhouse-db", "PARLEY_CLICKHOUSE_DB", "parley", "ingest: Parley's analytics database")
	fs.str(&o.ClickHouseUser, "clickhouse-user", "PARLEY_CLICKHOUSE_USER", "default", "ingest: ClickHouse user")
	fs.str(&o.ClickHousePassword, "clickhouse-password", "PARLEY_CLICKHOUSE_PASSWORD", "", "ingest: ClickHouse password")
	fs.integer(&o.Events, "events", "PARLEY_BENCH_INGEST_EVENTS", 200_000, "ingest: events to load")
	fs.duration(&o.LoaderTimeout, "loader-timeout", "PARLEY_BENCH_LOADER_TIMEOUT", 5*time.Minute, "ingest: longest wait for the loader")
	fs.str(&cpuProfile, "cpuprofile", "PARLEY_BENCH_CPUPROFILE", "", "write the bench process's own CPU profile to this file")
	if err := fs.parse(args); err != nil {
		return err
	}
	if scenario == "" {
		fs.Usage()
		return errors.New("bench: name a scenario: " + strings.Join(bench.Scenarios, ", "))
	}
	if !slices.Contains(bench.Scenarios, scenario) {
		fs.Usage()
		return fmt.Errorf("bench: unknown scenario %q (want one of %s)", scenario, strings.Join(bench.Scenarios, ", "))
	}
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.Brokers = append(o.Brokers, b)
		}
	}
	o.CPUProfile = cpuProfile
	_, err := bench.Run(ctx, scenario, o, stdout, stderr)
	return err
}
