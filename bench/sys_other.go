//go:build !unix

package bench

import "time"

func raiseFileLimit() (uint64, error) { return 1 << 20, nil }

func processCPU() time.Duration { return 0 }
