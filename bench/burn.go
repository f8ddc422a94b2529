package main

import (
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"time"
)

// burnEnv makes the harness's binary a CPU-burning neighbour: a process
// that spins in a busy loop until it is killed (or for at most an hour).
const burnEnv = "SILO_BENCH_BURN"

// burnIfAsked spins forever when the process was started as a burner.
func burnIfAsked() {
	if os.Getenv(burnEnv) != "1" {
		return
	}
	end := time.Now().Add(time.Hour)
	for n := 0; ; n++ {
		if n&(1<<24-1) == 0 && time.Now().After(end) {
			os.Exit(0)
		}
	}
}

// startBurners starts one busy-loop process per core (runtime.NumCPU): the
// neighbour of the -burn runs and of the noisy scenario's CPU phase. stop
// kills them and waits for them.
func startBurners() (stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start CPU burners: %w", err)
	}
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}
	for range goruntime.NumCPU() {
		c := exec.Command(exe)
		c.Env = append(os.Environ(), burnEnv+"=1")
		if err := c.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("start CPU burners: %w", err)
		}
		cmds = append(cmds, c)
	}
	time.Sleep(200 * time.Millisecond) // let them get going
	return stop, nil
}
