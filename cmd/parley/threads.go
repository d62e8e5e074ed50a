package main

import (
	"os"
	"runtime"
)

// extraThreads is how many threads beyond the machine's cores a process
// that serves chat sockets runs Go code on. Go preempts a goroutine only
// after 10 ms and looks for ready sockets mostly when a thread has nothing
// else to do; with every thread held by a long-running goroutine (the
// analytics loader, the moderation workers, the garbage collector), a
// socket's reader waited up to 18 ms for one. Two more threads let the
// kernel, which time-slices in a few milliseconds, run it sooner: at 3,000
// msg/s on 2 cores the delivery p99 was 20.0–21.4 ms against 24.8–35.0 ms,
// for 5–6% more CPU (docs/benchmarks.md, "Threads").
const extraThreads = 2

// chatThreads returns the GOMAXPROCS a process serving chat sockets should
// use, given whether the GOMAXPROCS variable is set, the runtime's current
// setting and the usable cores, and whether that differs from the current
// setting. An operator's GOMAXPROCS wins. A default below the cores means
// a container CPU limit, and a process that runs more threads than its
// quota is throttled for the rest of each period, which makes the tail far
// worse: then the default stays too.
func chatThreads(envSet bool, current, cores int) (int, bool) {
	if envSet || current < cores {
		return current, false
	}
	return cores + extraThreads, true
}

// setChatThreads applies chatThreads to this process. Setting GOMAXPROCS
// stops the runtime from following later changes of the container's CPU
// limit, so it is done only when no limit applies.
func setChatThreads() {
	_, envSet := os.LookupEnv("GOMAXPROCS")
	if n, change := chatThreads(envSet, runtime.GOMAXPROCS(0), runtime.NumCPU()); change {
		runtime.GOMAXPROCS(n)
	}
}
