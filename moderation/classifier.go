package moderation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/parleychat/parley/ingest"
)

// Classifier is an external model that scores texts by category. Workers
// call it (never the inline check) for a whole consumer batch before
// their transaction opens, when a site's policy configures one; labels
// scoring at least the policy's threshold add their category to the
// verdict. It is off by default.
type Classifier interface {
	// Classify returns one list of labels per text, in order.
	Classify(ctx context.Context, texts []string) ([][]Label, error)
}

// Label is a classifier's score for one category, from 0 to 1.
type Label struct {
	Category string  `json:"category"`
	Score    float64 `json:"score"`
}

// Defaults of the HTTP classifier.
const (
	DefaultClassifierBatch       = 32
	DefaultClassifierConcurrency = 4
	DefaultClassifierTimeout     = 500 * time.Millisecond
	// the breaker opens after this many failed calls in a row and stays
	// open (failing at once) for classifierOpenFor before one trial call
	classifierTrip    = 5
	classifierOpenFor = 30 * time.Second
)

// HTTPClassifier posts batches of texts to URL:
//
//	POST {"texts": ["...", "..."]}
//	200  {"model": "name@version", "results": [{"labels": [{"category": "threat", "score": 0.93}]}, ...]}
//
// with one result per text, in order. At most Concurrency requests run at
// once, each bounded by Timeout; after repeated failures a circuit
// breaker fails calls at once for a while, so a dead classifier does not
// slow the workers down.
type HTTPClassifier struct {
	URL         string
	Client      *http.Client
	Batch       int
	Concurrency int
	Timeout     time.Duration

	once    sync.Once
	sem     chan struct{}
	breaker *gobreaker.CircuitBreaker[classifyResponse]
	mu      sync.Mutex
	model   string // the model the service last named
}

type classifyResponse struct {
	Model   string `json:"model"`
	Results []struct {
		Labels []Label `json:"labels"`
	} `json:"results"`
}

// ErrClassifierOpen is returned while the circuit breaker is open.
var ErrClassifierOpen = errors.New("classifier circuit breaker is open")

func (h *HTTPClassifier) init() {
	h.once.Do(func() {
		if h.Batch <= 0 {
			h.Batch = DefaultClassifierBatch
		}
		if h.Concurrency <= 0 {
			h.Concurrency = DefaultClassifierConcurrency
		}
		if h.Timeout <= 0 {
			h.Timeout = DefaultClassifierTimeout
		}
		if h.Client == nil {
			h.Client = http.DefaultClient
		}
		h.sem = make(chan struct{}, h.Concurrency)
		h.breaker = gobreaker.NewCircuitBreaker[classifyResponse](gobreaker.Settings{
			Name:        h.URL,
			MaxRequests: 1,
			Timeout:     classifierOpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= classifierTrip },
			// a cancelled batch (shutdown) says nothing about the service
			IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		})
	})
}

// Model returns the model name the service reported last, or its host.
func (h *HTTPClassifier) Model() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.model != "" {
		return h.model
	}
	if u, err := url.Parse(h.URL); err == nil {
		return u.Host
	}
	return h.URL
}

// Classify scores texts in batches of Batch, Concurrency at a time.
func (h *HTTPClassifier) Classify(ctx context.Context, texts []string) ([][]Label, error) {
	h.init()
	out := make([][]Label, len(texts))
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for from := 0; from < len(texts); from += h.Batch {
		to := min(from+h.Batch, len(texts))
		select {
		case h.sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-h.sem }()
			labels, err := h.call(ctx, texts[from:to])
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				return
			}
			copy(out[from:to], labels)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// call posts one batch through the breaker.
func (h *HTTPClassifier) call(ctx context.Context, texts []string) ([][]Label, error) {
	res, err := h.breaker.Execute(func() (classifyResponse, error) {
		ctx, cancel := context.WithTimeout(ctx, h.Timeout)
		defer cancel()
		return h.post(ctx, texts)
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, fmt.Errorf("classifier %s: %w", h.URL, ErrClassifierOpen)
	}
	if err != nil {
		return nil, err
	}
	if res.Model != "" {
		h.mu.Lock()
		h.model = res.Model
		h.mu.Unlock()
	}
	out := make([][]Label, len(texts))
	for i, r := range res.Results {
		out[i] = r.Labels
	}
	return out, nil
}

func (h *HTTPClassifier) post(ctx context.Context, texts []string) (classifyResponse, error) {
	var res classifyResponse
	body, err := json.Marshal(map[string][]string{"texts": texts})
	if err != nil {
		return res, fmt.Errorf("classifier request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return res, fmt.Errorf("classifier request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.Client.Do(req)
	if err != nil {
		return res, fmt.Errorf("classifier %s: %w", h.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("classifier %s: status %d", h.URL, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&res); err != nil {
		return res, fmt.Errorf("classifier %s: decode: %w", h.URL, err)
	}
	if len(res.Results) != len(texts) {
		return res, fmt.Errorf("classifier %s: %d results for %d texts", h.URL, len(res.Results), len(texts))
	}
	return res, nil
}

// classifiers keeps one HTTPClassifier per URL, so that its breaker and
// concurrency bound hold across batches and sites.
type classifiers struct {
	mu sync.Mutex
	m  map[string]*HTTPClassifier
}

func (c *classifiers) get(o ClassifierOptions) *HTTPClassifier {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*HTTPClassifier{}
	}
	h, ok := c.m[o.URL]
	if !ok {
		h = &HTTPClassifier{URL: o.URL, Timeout: time.Duration(o.TimeoutMS) * time.Millisecond}
		c.m[o.URL] = h
	}
	return h
}

// classifierSpans turns one text's labels into spans: labels at or above
// the threshold, with a valid category name.
func classifierSpans(labels []Label, o ClassifierOptions, text, source string) []ingest.Span {
	threshold := o.Threshold
	if threshold <= 0 {
		threshold = 0.8
	}
	var spans []ingest.Span
	for _, l := range labels {
		if l.Score >= threshold && categoryRe.MatchString(l.Category) {
			spans = append(spans, ingest.Span{Start: 0, End: len(text), Category: l.Category,
				Rule: fmt.Sprintf("classifier:%.2f", l.Score), Source: source})
		}
	}
	return spans
}

// modelNamer is a classifier that can say which model answered.
type modelNamer interface{ Model() string }

// classify runs the classifiers the jobs' policies name, one batched
// call per classifier for the whole consumer batch, and adds the labels
// to the jobs' verdicts. It runs before the worker's transaction opens.
// A failing or open classifier is logged and the rules decide alone.
func (s *Service) classify(ctx context.Context, jobs []job) {
	type group struct {
		c    Classifier
		idx  []int
		text []string
	}
	groups := map[Classifier]*group{}
	var order []Classifier
	for i, j := range jobs {
		if !j.moderate {
			continue
		}
		c := s.classifierFor(j.engine.policy)
		if c == nil {
			continue
		}
		g, ok := groups[c]
		if !ok {
			g = &group{c: c}
			groups[c] = g
			order = append(order, c)
		}
		g.idx = append(g.idx, i)
		g.text = append(g.text, j.msg.Text)
	}
	for _, c := range order {
		g := groups[c]
		labels, err := c.Classify(ctx, g.text)
		if err != nil {
			s.log.Warn("classifier failed; judging by rules alone", "messages", len(g.text), "err", err)
			continue
		}
		source := "classifier"
		if n, ok := c.(modelNamer); ok {
			source += ":" + n.Model()
		}
		for k, i := range g.idx {
			j := &jobs[i]
			if k >= len(labels) {
				break
			}
			if spans := classifierSpans(labels[k], j.engine.policy.Classifier, j.msg.Text, source); len(spans) > 0 {
				j.verdict = j.engine.Combine(j.msg.Text, j.verdict, spans...)
			}
		}
	}
}
