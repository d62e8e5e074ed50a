package main

import "testing"

// moderationRoutes lists the moderation API routes for the role matrix.
func moderationRoutes(t *testing.T, p *parleyE2E) []apiRoute {
	return nil
}
