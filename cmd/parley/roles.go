package main

import (
	"context"
	"errors"
	"io"
)

// wireRoles builds the components of the roles n runs and adds them.
func wireRoles(ctx context.Context, n *node) error {
	return nil
}

func runModerationCheck(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("moderate check: not wired yet")
}

func runAnalyticsReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("analytics replay: not wired yet")
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("bench: not wired yet")
}
