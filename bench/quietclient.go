package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The noisy scenario's quiet tenant is also measured from a client process
// of its own: the harness's binary started with quietClientEnv set, on the
// same machine but outside the platform's process, as a tenant's client is.
// The in-process client shares the platform's Go scheduler, its garbage
// collections and its threads' wake-ups (about six of a request's eleven
// goroutine hand-offs are the client's own), so it measures the harness as
// well as the platform; both are reported.
const quietClientEnv = "SILO_BENCH_QUIET_CLIENT"

// quietSpec is what a quiet client process sends: GET url with Host host
// and the tenant's key, at rate requests a second.
type quietSpec struct {
	URL, Host, Key string
	Rate           int
}

// quietReport is one segment's answer of a quiet client process.
type quietReport struct {
	Latencies []time.Duration
	Errors    int
	First     string // the first error, if any
}

// quietLoop sends req at a steady rate for d and returns each request's
// latency, counted from its scheduled time so that a stall is not hidden
// by sending later (no coordinated omission), with the errors (a status
// other than 200 counts).
func quietLoop(c *http.Client, req *http.Request, rate int, d time.Duration) (lat []time.Duration, errs int, first error) {
	every := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; i < int(d/every) && i < 1_000_000; i++ {
		at := start.Add(time.Duration(i) * every)
		if w := time.Until(at); w > 0 {
			time.Sleep(w)
		}
		st, err := do(c, req)
		lat = append(lat, time.Since(at))
		if err != nil || st != 200 {
			errs++
			if first == nil {
				first = fmt.Errorf("status %d, %v", st, err)
			}
		}
	}
	return lat, errs, first
}

// quietClientIfAsked serves as a quiet client process when started as one:
// for each duration read from stdin, one segment of quietLoop, answered
// with a quietReport line on stdout; it exits at the end of stdin.
func quietClientIfAsked() {
	spec := os.Getenv(quietClientEnv)
	if spec == "" {
		return
	}
	var s quietSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "bench quiet client:", err)
		os.Exit(2)
	}
	req, err := http.NewRequest("GET", s.URL, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench quiet client:", err)
		os.Exit(2)
	}
	req.Host = s.Host
	req.Header.Set("Authorization", "Bearer "+s.Key)
	c := newClient(1)
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		d, err := time.ParseDuration(in.Text())
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench quiet client:", err)
			os.Exit(2)
		}
		lat, errs, first := quietLoop(c, req, s.Rate, d)
		r := quietReport{Latencies: lat, Errors: errs}
		if first != nil {
			r.First = first.Error()
		}
		if err := out.Encode(r); err != nil {
			os.Exit(1)
		}
	}
	os.Exit(0)
}

// quietProc is a running quiet client process.
type quietProc struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
}

// startQuietClient starts a quiet client process for req (a GET with the
// tenant's Host and key) at rate requests a second.
func startQuietClient(req *http.Request, rate int) (*quietProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start the quiet client: %w", err)
	}
	spec, err := json.Marshal(quietSpec{URL: req.URL.String(), Host: req.Host, Key: strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "), Rate: rate})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), quietClientEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the quiet client: %w", err)
	}
	return &quietProc{cmd: cmd, in: in, out: json.NewDecoder(out)}, nil
}

// run has the client send for d and returns what it measured.
func (q *quietProc) run(d time.Duration) (lat []time.Duration, errs int, first error, err error) {
	if _, err := fmt.Fprintln(q.in, d); err != nil {
		return nil, 0, nil, fmt.Errorf("quiet client: %w", err)
	}
	var r quietReport
	if err := q.out.Decode(&r); err != nil {
		return nil, 0, nil, fmt.Errorf("quiet client: %w", err)
	}
	if r.First != "" {
		first = fmt.Errorf("%s", r.First)
	}
	return r.Latencies, r.Errors, first, nil
}

// close ends the client process and waits for it.
func (q *quietProc) close() {
	q.in.Close()
	q.cmd.Wait()
}
