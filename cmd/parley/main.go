// Command parley runs Parley: every role in one process (`parley serve`,
// on an embedded broker and SQLite), or one role per process against
// external Kafka and ClickHouse. It wires the domain packages together and
// owns configuration, the ops endpoints and graceful shutdown.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `Parley: customer chat with a real-time moderation and analytics pipeline.

Usage: parley <command> [flags]

Commands:
  serve       run every role in one process on embedded defaults (start here)
  chat        run the chat service (visitor widget, agent sockets, REST) alone
  moderate    run the moderation workers and review-queue API alone
              moderate check: judge JSON lines from stdin with a policy
  analytics   run the analytics loader and query API alone
              analytics replay: rebuild the analytics tables from the topics
  dashboard   run the staff web app alone
  broker      run the embedded Kafka-protocol broker alone (development and tests only)
  migrate     copy a data directory's SQLite state into PostgreSQL (--postgres)
  bench       drive a running Parley and report throughput and latency
  probe URL   exit 0 when URL answers 200 (container health checks)
  version     print the version

Run 'parley <command> --help' for a command's flags. Every flag can also be
set by the PARLEY_* environment variable named in its help.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Here and not in runRoles: tests call run in their own process, whose
	// threads are not the command's to change.
	if len(os.Args) > 1 && (os.Args[1] == "serve" || os.Args[1] == "chat") {
		setChatThreads()
	}
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Stdin); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "parley:", err)
			os.Exit(1)
		}
	}
}

// run dispatches a command line; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, stdin io.Reader) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runRoles(ctx, "serve", roleSet{Chat: true, Moderation: true, Analytics: true, Dashboard: true}, rest, stdout, stderr)
	case "chat":
		return runRoles(ctx, "chat", roleSet{Chat: true}, rest, stdout, stderr)
	case "moderate":
		if len(rest) > 0 && rest[0] == "check" {
			return runModerationCheck(ctx, rest[1:], stdin, stdout, stderr)
		}
		return runRoles(ctx, "moderate", roleSet{Moderation: true}, rest, stdout, stderr)
	case "analytics":
		if len(rest) > 0 && rest[0] == "replay" {
			return runAnalyticsReplay(ctx, rest[1:], stdout, stderr)
		}
		return runRoles(ctx, "analytics", roleSet{Analytics: true}, rest, stdout, stderr)
	case "dashboard":
		return runRoles(ctx, "dashboard", roleSet{Dashboard: true}, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "broker":
		return runBroker(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "probe":
		return runProbe(ctx, rest, stdout)
	case "version", "--version":
		fmt.Fprintln(stdout, "parley", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

var roleSynopsis = map[string]string{
	"serve":     "Runs every role (chat, moderation, analytics, dashboard) in one process. Without --brokers it starts an\nembedded Kafka-protocol broker under --data; without --clickhouse analytics uses SQLite under --data.",
	"chat":      "Runs the chat service alone: visitor widget and sockets, agent sockets, REST API, outbox relay.",
	"moderate":  "Runs the moderation workers (consumer group parley-moderation) and the review-queue API alone.",
	"analytics": "Runs the analytics loader (consumer group parley-analytics) and the query API alone.",
	"dashboard": "Runs the staff web app (agents, supervisors, moderators, admins) alone.",
}

// roleFlags builds the flag set of a role command.
func roleFlags(name string, roles roleSet, s *settings) *flagSet {
	fs := newFlagSet(name, roleSynopsis[name])
	s.common(fs, "127.0.0.1:8080")
	if name == "serve" {
		fs.integer(&s.KafkaPort, "kafka-port", "PARLEY_KAFKA_PORT", 0, "port of the embedded broker (0 picks a free one)")
		fs.boolean(&s.Demo, "demo", "PARLEY_DEMO", false, "fill a fresh data directory with several weeks of realistic demo traffic")
	}
	if roles.Analytics {
		s.clickhouse(fs)
	}
	if roles.Chat {
		s.Email.flags(fs)
	}
	return fs
}

func runRoles(ctx context.Context, name string, roles roleSet, args []string, stdout, stderr io.Writer) error {
	var s settings
	fs := roleFlags(name, roles, &s)
	fs.SetOutput(stderr)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := s.validate(name != "serve"); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := newLogger(stderr, s.LogLevel)
	n, err := startNode(ctx, s, roles, log)
	if err != nil {
		return err
	}
	log.Info("parley started", "roles", roles.names(), "url", n.url, "node", s.NodeID, "threads", runtime.GOMAXPROCS(0))
	fmt.Fprintf(stdout, "Parley (%s) is running. Open %s/\n", name, n.url)
	if n.firstAdminFile != "" {
		fmt.Fprintf(stdout, "First sign-in: the admin email and password are in %s\n", n.firstAdminFile)
	}
	if name == "serve" {
		if err := n.welcome(ctx, stdout); err != nil {
			n.close()
			return err
		}
	}
	return n.run(ctx)
}
