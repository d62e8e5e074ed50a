package moderation

import "github.com/prometheus/client_golang/prometheus"

// metrics are the workers' and review queue's; checks is shared with
// the inline checker's (register hands both the same collector).
type metrics struct {
	checks        *prometheus.CounterVec
	items         *prometheus.CounterVec
	decisions     *prometheus.CounterVec
	reviewSeconds prometheus.Histogram
	backlog       prometheus.Gauge
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		checks: newChecksCounter(),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_moderation_items_total", Help: "Review-queue items created, by category.",
		}, []string{"category"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_moderation_decisions_total", Help: "Moderator decisions, by decision.",
		}, []string{"decision"}),
		reviewSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_moderation_review_seconds", Help: "Time from an item entering the queue to its decision.",
			Buckets: prometheus.ExponentialBuckets(10, 2, 14),
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_moderation_backlog", Help: "Open review-queue items.",
		}),
	}
	if r != nil {
		register(r, m.checks, &m.checks)
		register(r, m.items, &m.items)
		register(r, m.decisions, &m.decisions)
		register(r, m.reviewSeconds, &m.reviewSeconds)
		register(r, m.backlog, &m.backlog)
	}
	return m
}

func newChecksCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_moderation_checks_total", Help: "Messages judged, by stage (inline, worker) and action.",
	}, []string{"stage", "action"})
}

// inlineMetrics are the inline checker's, registered on a chat node too.
type inlineMetrics struct {
	checks  *prometheus.CounterVec
	seconds prometheus.Histogram
}

func newInlineMetrics(r prometheus.Registerer) *inlineMetrics {
	m := &inlineMetrics{
		checks: newChecksCounter(),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parley_moderation_inline_check_seconds", Help: "Time of one inline check.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 2, 14),
		}),
	}
	if r != nil {
		register(r, m.checks, &m.checks)
		register(r, m.seconds, &m.seconds)
	}
	return m
}

// register registers c, or reuses the identical collector a second
// Service in the same process registered first.
func register[C prometheus.Collector](r prometheus.Registerer, c C, dst *C) {
	if err := r.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				*dst = existing
			}
		}
	}
}
