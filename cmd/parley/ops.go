package main

import (
	"context"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyTimeout bounds /readyz: every check gets this long.
const readyTimeout = 3 * time.Second

// readyCheck is one dependency /readyz reports on.
type readyCheck struct {
	name  string
	check func(ctx context.Context) error
}

// mountOps registers /healthz (the process serves), /readyz (every
// dependency answers, each reported by name) and /metrics.
func mountOps(app *fiber.App, reg *prometheus.Registry, checks func() []readyCheck) {
	app.Get("/healthz", func(c *fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	app.Get("/readyz", func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), readyTimeout)
		defer cancel()
		list := checks()
		results := make(map[string]string, len(list))
		var mu sync.Mutex
		done := make(chan struct{}, len(list))
		for _, rc := range list {
			go func() {
				status := "ok"
				if err := rc.check(ctx); err != nil {
					status = err.Error()
				}
				mu.Lock()
				results[rc.name] = status
				mu.Unlock()
				done <- struct{}{}
			}()
		}
		// Answer by the deadline even if a check ignores its context: it
		// counts as not ready.
	wait:
		for range list {
			select {
			case <-done:
			case <-ctx.Done():
				break wait
			}
		}
		mu.Lock()
		defer mu.Unlock()
		ready := true
		for _, rc := range list {
			if _, ok := results[rc.name]; !ok {
				results[rc.name] = "no answer within " + readyTimeout.String()
			}
			if results[rc.name] != "ok" {
				ready = false
			}
		}
		code := fiber.StatusOK
		if !ready {
			code = fiber.StatusServiceUnavailable
		}
		return c.Status(code).JSON(fiber.Map{"ready": ready, "checks": results})
	})
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
}
