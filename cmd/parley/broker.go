package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/parleychat/parley/ingest"
)

// runBroker runs the embedded Kafka-protocol broker as a process of its
// own, so several Parley nodes on one machine share it in development and
// tests. It is not for production: Apache Kafka is.
func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("broker", "Runs Parley's embedded Kafka-protocol broker (franz-go's kfake) alone, persisted under --data,\n"+
		"so that several `parley chat|moderate|analytics|dashboard` processes on one machine share one broker\n"+
		"(point them at it with --brokers 127.0.0.1:PORT). For development and tests only: it is a single\n"+
		"in-memory node without replication; production deployments use Apache Kafka.")
	fs.SetOutput(stderr)
	var dataDir, logLevel string
	var port, partitions int
	var retention time.Duration
	var fsync bool
	fs.str(&dataDir, "data", "PARLEY_DATA", "./parley-broker", "directory for the broker's log (locked while it runs)")
	fs.integer(&port, "port", "PARLEY_KAFKA_PORT", 9092, "port on 127.0.0.1 to listen on (0 picks a free one)")
	fs.integer(&partitions, "partitions", "PARLEY_PARTITIONS", 4, "partitions of each event topic the broker creates at start")
	fs.duration(&retention, "retention", "PARLEY_RETENTION", 14*24*time.Hour, "how long topics keep events")
	fs.str(&logLevel, "log-level", "PARLEY_LOG_LEVEL", "info", "debug, info, warn or error")
	fs.boolean(&fsync, "fsync", "PARLEY_FSYNC", false, "fsync every produced batch before acknowledging it")
	if err := fs.parse(args); err != nil {
		return err
	}
	if port < 0 || port > 65535 {
		return fmt.Errorf("--port / PARLEY_KAFKA_PORT %d is not a port", port)
	}
	log := newLogger(stderr, logLevel)
	b, err := ingest.StartEmbedded(ingest.EmbeddedConfig{Dir: filepath.Join(dataDir, "kafka"), Port: port, SyncWrites: fsync})
	if errors.Is(err, ingest.ErrDataDirLocked) {
		return fmt.Errorf("another broker or parley serve is running on %s: %w", dataDir, err)
	}
	if err != nil {
		return err
	}
	defer b.Close()
	if err := ingest.EnsureTopics(ctx, b.Addrs(), ingest.DefaultTopics(partitions, retention)); err != nil {
		return err
	}
	log.Info("broker started", "addrs", b.Addrs(), "data", dataDir)
	fmt.Fprintf(stdout, "Parley broker is running on %s (development only; use Apache Kafka in production)\n", b.Addrs()[0])
	<-ctx.Done()
	log.Info("broker stopping")
	return nil
}
