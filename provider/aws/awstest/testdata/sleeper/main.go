// Command sleeper writes its process ID to the file named by its argument
// and sleeps: a stand-in for a compiler the go command runs, in
// TestBuildStopsWhole.
package main

import (
	"os"
	"strconv"
	"time"
)

func main() {
	if err := os.WriteFile(os.Args[1], []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		os.Exit(1)
	}
	time.Sleep(10 * time.Minute)
}
