package chatsvc

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connections   *prometheus.GaugeVec
	messages      *prometheus.CounterVec
	frameErrors   *prometheus.CounterVec
	slowClients   prometheus.Counter
	resendRedos   prometheus.Counter
	walPages      prometheus.Gauge
	walBackfilled prometheus.Gauge
	commitBatch   prometheus.Histogram
	commitSeconds prometheus.Histogram
	outboxBacklog prometheus.Gauge
	relayLag      prometheus.Gauge
	relayFailures prometheus.Counter
	relayed       prometheus.Counter
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "parley_chat_connections", Help: "Open chat WebSockets, by kind (visitor, agent).",
		}, []string{"kind"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_chat_messages_total", Help: "Messages stored, by author role.",
		}, []string{"role"}),
		frameErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_chat_frame_errors_total", Help: "Error frames sent to clients, by code.",
		}, []string{"code"}),
		slowClients: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_chat_slow_clients_total", Help: "Sockets closed because their outbound queue was full.",
		}),
		resendRedos: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_chat_resend_redos_total", Help: "Group-commit batches redone because a resent client id reached the unique index.",
		}),
		walPages: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_chat_wal_pages", Help: "Pages in chat.db's write-ahead log at the last background checkpoint.",
		}),
		walBackfilled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_chat_wal_checkpointed_pages", Help: "Pages of the write-ahead log copied into chat.db at the last background checkpoint.",
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_chat_commit_batch_ops", Help: "Operations per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_chat_commit_seconds", Help: "Time to run and commit one group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		outboxBacklog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_chat_outbox_backlog", Help: "Outbox events not yet acknowledged by Kafka.",
		}),
		relayLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_chat_relay_lag_seconds", Help: "Age of the oldest outbox event not yet acknowledged by Kafka.",
		}),
		relayFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_chat_relay_failures_total", Help: "Outbox relay publish attempts that failed.",
		}),
		relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_chat_relayed_total", Help: "Outbox events acknowledged by Kafka.",
		}),
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.connections, m.messages, m.frameErrors, m.slowClients, m.resendRedos, m.walPages, m.walBackfilled, m.commitBatch,
			m.commitSeconds, m.outboxBacklog, m.relayLag, m.relayFailures, m.relayed} {
			if err := r.Register(c); err != nil {
				if _, dup := err.(prometheus.AlreadyRegisteredError); !dup {
					return nil, fmt.Errorf("register chat metrics: %w", err)
				}
			}
		}
	}
	return m, nil
}
