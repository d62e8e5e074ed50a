package ingest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedBroker is an in-process Kafka-protocol broker (franz-go's kfake)
// persisted under a data directory. Clients reach it over loopback like
// any other Kafka cluster, so nothing else in Parley knows it is embedded.
type EmbeddedBroker struct {
	cluster *kfake.Cluster
	lock    *os.File
	dir     string
}

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Dir keeps topics, messages and committed offsets across restarts.
	Dir string
	// Port fixes the listening port; 0 picks a free one.
	Port int
	// RetentionCheck is how often retention runs on topics that set it.
	RetentionCheck time.Duration
	// SyncWrites fsyncs every produced batch.
	SyncWrites bool
}

// ErrDataDirLocked means another process already runs a broker on the directory.
var ErrDataDirLocked = errors.New("data directory is in use by another process")

// StartEmbedded locks cfg.Dir and starts the broker on 127.0.0.1.
func StartEmbedded(cfg EmbeddedConfig) (*EmbeddedBroker, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded broker: empty data directory")
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded broker: create %s: %w", cfg.Dir, err)
	}
	lock, err := LockDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if cfg.RetentionCheck <= 0 {
		cfg.RetentionCheck = 5 * time.Minute
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DataDir(filepath.Join(cfg.Dir, "log")),
		kfake.Ports(cfg.Port),
		kfake.ClusterID("parley-embedded"),
		kfake.BrokerConfigs(map[string]string{
			"log.cleaner.backoff.ms": strconv.FormatInt(cfg.RetentionCheck.Milliseconds(), 10),
		}),
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("embedded broker: start on port %d: %w", cfg.Port, err)
	}
	return &EmbeddedBroker{cluster: cluster, lock: lock, dir: cfg.Dir}, nil
}

// Addrs returns the broker addresses to hand to clients.
func (b *EmbeddedBroker) Addrs() []string { return b.cluster.ListenAddrs() }

// ApplyRetention enforces topic retention now instead of at the next check.
func (b *EmbeddedBroker) ApplyRetention() { b.cluster.ApplyRetention() }

// Close persists state, stops the broker and releases the directory.
func (b *EmbeddedBroker) Close() error {
	b.cluster.Close()
	return b.lock.Close()
}

// LockDir takes an exclusive advisory lock on dir/LOCK for the life of the
// process (or until the returned file is closed). A second process gets
// ErrDataDirLocked naming the holder's pid instead of corrupting the data.
func LockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked by pid %s", ErrDataDirLocked, dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
