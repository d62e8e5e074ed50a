package chatsvc

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connections   *prometheus.GaugeVec
	messages      *prometheus.CounterVec
	frameErrors   *prometheus.CounterVec
	slowClients   prometheus.Counter
	resendRedos   prometheus.Counter
	conflictRedos prometheus.Counter
	deferredOps   *prometheus.CounterVec
	socketWrites  prometheus.Counter
	socketFrames  prometheus.Counter
	commitBatch   prometheus.Histogram
	commitSeconds prometheus.Histogram
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
		socketWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_chat_socket_writes_total", Help: "Writes of queued frames to sockets (several frames queued for one socket go out in one write).",
		}),
		socketFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_chat_socket_frames_total", Help: "Frames written to sockets.",
		}),
		conflictRedos: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_chat_conflict_redos_total", Help: "Group-commit batches redone because another node had changed a conversation meanwhile.",
		}),
		deferredOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_chat_deferred_ops_total", Help: "Operations a group commit left for the next one because another node's transaction held their conversation, by kind (message, read, other).",
		}, []string{"kind"}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_chat_commit_batch_ops", Help: "Operations per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_chat_commit_seconds", Help: "Time to run and commit one group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	for _, kind := range []string{opMessage, opRead, opOther} {
		m.deferredOps.WithLabelValues(kind) // exported as 0 before the first deferral
	}
	if err := registerCollectors(r, m.connections, m.messages, m.frameErrors, m.slowClients, m.resendRedos, m.conflictRedos, m.deferredOps, m.socketWrites, m.socketFrames, m.commitBatch, m.commitSeconds); err != nil {
		return nil, err
	}
	return m, nil
}

// registerCollectors registers each collector on r (nil: none); one
// already registered (a second service on one registry) is no error.
func registerCollectors(r prometheus.Registerer, cs ...prometheus.Collector) error {
	if r == nil {
		return nil
	}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			var dup prometheus.AlreadyRegisteredError
			if !errors.As(err, &dup) {
				return fmt.Errorf("register chat metrics: %w", err)
			}
		}
	}
	return nil
}
