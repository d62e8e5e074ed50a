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
		ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
		defer cancel()
		list := checks()
		results := make(map[string]string, len(list))
		var mu sync.Mutex
		var wg sync.WaitGroup
		ready := true
		for _, rc := range list {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status := "ok"
				if err := rc.check(ctx); err != nil {
					status = err.Error()
				}
				mu.Lock()
				defer mu.Unlock()
				results[rc.name] = status
				if status != "ok" {
					ready = false
				}
			}()
		}
		wg.Wait()
		code := fiber.StatusOK
		if !ready {
			code = fiber.StatusServiceUnavailable
		}
		return c.Status(code).JSON(fiber.Map{"ready": ready, "checks": results})
	})
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
}
