//go:build !race

package main

// raceEnabled says the tests run with -race: processes they build are
// built the same way, reusing the test build's compiled packages.
const raceEnabled = false
