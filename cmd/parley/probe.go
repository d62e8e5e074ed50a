package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// runProbe is a dependency-free health check for container images that
// have no curl: it exits non-zero unless the URL answers 200.
func runProbe(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) != 1 || args[0] == "--help" || args[0] == "-h" {
		return errors.New("usage: parley probe URL (exits 0 when URL answers 200 within 5 s)")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", args[0], err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", args[0], err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("probe %s: %s %s", args[0], res.Status, body)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
