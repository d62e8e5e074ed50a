package moderation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/parleychat/parley/ingest"
)

// Classifier is a model that scores a text by category. Workers call it
// (never the inline check) when a site's policy configures one; labels
// scoring at least the policy's threshold add their category to the
// verdict. It is off by default.
type Classifier interface {
	Classify(ctx context.Context, text string) ([]Label, error)
}

// Label is a classifier's score for one category, from 0 to 1.
type Label struct {
	Category string  `json:"category"`
	Score    float64 `json:"score"`
}

// HTTPClassifier posts {"text": ...} to URL and reads
// {"labels": [{"category": ..., "score": ...}]}.
type HTTPClassifier struct {
	URL    string
	Client *http.Client
}

// Classify calls the service.
func (h *HTTPClassifier) Classify(ctx context.Context, text string) ([]Label, error) {
	body, err := json.Marshal(map[string]string{"text": text})
	if err != nil {
		return nil, fmt.Errorf("classifier request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("classifier request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("classifier %s: %w", h.URL, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("classifier %s: status %d", h.URL, res.StatusCode)
	}
	var out struct {
		Labels []Label `json:"labels"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("classifier %s: decode: %w", h.URL, err)
	}
	return out.Labels, nil
}

// runClassifier runs the policy's classifier, if any, and returns spans for
// the labels at or above its threshold. A failing classifier is logged by
// the caller and the verdict stands on the rules alone.
func runClassifier(ctx context.Context, c Classifier, o ClassifierOptions, text string) ([]ingest.Span, error) {
	if c == nil {
		return nil, nil
	}
	timeout := time.Duration(o.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = 500 * time.Millisecond
	}
	threshold := o.Threshold
	if threshold <= 0 {
		threshold = 0.8
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	labels, err := c.Classify(ctx, text)
	if err != nil {
		return nil, err
	}
	var spans []ingest.Span
	for _, l := range labels {
		if l.Score >= threshold && categoryRe.MatchString(l.Category) {
			spans = append(spans, ingest.Span{Start: 0, End: len(text), Category: l.Category, Rule: fmt.Sprintf("classifier:%.2f", l.Score)})
		}
	}
	return spans, nil
}
