package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// loopComponent is a component that is only a loop.
type loopComponent struct {
	run func(ctx context.Context) error
}

func (c loopComponent) Mount(fiber.Router)            {}
func (c loopComponent) Run(ctx context.Context) error { return c.run(ctx) }
func (c loopComponent) Ready(context.Context) error   { return nil }

// runUntilStopped runs n, cancels it and returns what run returned.
func runUntilStopped(t *testing.T, n *node) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.ln, n.app = ln, fiber.New(fiber.Config{DisableStartupMessage: true})
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan error, 1)
	go func() { result <- n.run(ctx) }()
	cancel()
	select {
	case err := <-result:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("shutdown still waits for the components after 20 s")
		return nil
	}
}

// Shutdown waits for the loops to flush and commit, but not forever: a
// loop that does not stop is named in the log and left behind, and the
// process exits.
func TestShutdownLeavesAStuckLoopBehind(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var fineStopped atomic.Bool
	var logs bytes.Buffer
	n := &node{log: slog.New(slog.NewJSONHandler(&logs, nil)), stopWait: 300 * time.Millisecond, components: map[string]component{
		"stuck": loopComponent{func(context.Context) error { <-release; return nil }},
		"fine":  loopComponent{func(ctx context.Context) error { <-ctx.Done(); fineStopped.Store(true); return nil }},
	}}
	err := runUntilStopped(t, n)
	if err == nil || !strings.Contains(err.Error(), "stuck") || strings.Contains(err.Error(), "fine") {
		t.Fatalf("run = %v, want an error naming only the stuck component", err)
	}
	if !fineStopped.Load() {
		t.Fatal("the component that stops was not waited for")
	}
	if !strings.Contains(logs.String(), `"components":["stuck"]`) {
		t.Fatalf("the log does not name the stuck component:\n%s", logs.String())
	}

	// Loops that stop in time end in a clean exit.
	n = &node{log: slog.New(slog.NewJSONHandler(&logs, nil)), stopWait: 10 * time.Second, components: map[string]component{
		"slow": loopComponent{func(ctx context.Context) error { <-ctx.Done(); time.Sleep(100 * time.Millisecond); return nil }},
	}}
	if err := runUntilStopped(t, n); err != nil {
		t.Fatalf("run = %v, want a clean stop", err)
	}
}
