// Command silo-aws-emulator runs an emulated AWS organization on this
// machine, so that silo's AWS provider can be tried without an AWS
// account: the management account and one member account per silo
// account, each a kumo process (github.com/sivchari/kumo, a third-party
// AWS emulator, built from the tool dependency in go.mod), all reached at
// one address, which silo is given as AWS_ENDPOINT_URL. Run it from a
// clone of silo:
//
//	go run ./cmd/silo-aws-emulator
//
// It prints the settings to give silo and runs until interrupted; its
// accounts and their data are kept in memory and are gone when it stops,
// unless --data-dir names a directory to keep them in across restarts.
// docs/aws.md ("Try it on an emulated organization") has the walk-through
// and what the emulator does not do.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/silo-run/silo/provider/aws/awstest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the emulator with args until it is interrupted, and returns
// the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("silo-aws-emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4566", "the address to serve the organization on (host:port; port 0 for a free one)")
	dir := fs.String("data-dir", "", "keep the organization in this directory across restarts (default: in memory, gone when it stops)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: silo-aws-emulator [--listen ADDR] [--data-dir DIR]\n\nRuns an emulated AWS organization for trying silo's AWS provider on this machine.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "silo-aws-emulator: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// kumo is built first, where Ctrl-C stops the build with its compilers.
	fmt.Fprintln(stdout, "building kumo, the AWS emulator, unless this machine's Go build cache has it (the first time: several minutes on 2 cores, longer on a busy machine)...")
	if _, err := awstest.BuildKumo(ctx); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stdout, "\nstopped before kumo was built; the next run builds it")
			return 1
		}
		fmt.Fprintf(stderr, "silo-aws-emulator: kumo, the AWS emulator, could not be built: run this from a clone of silo with the go command on PATH (it is built from the tool dependency in silo's go.mod): %v\n", err)
		return 1
	}
	o := &owner{out: stdout, err: stderr, fatal: make(chan struct{})}
	status := o.run(func() {
		fmt.Fprintln(stdout, "starting the management account...")
		org := awstest.Serve(o, *listen, *dir)
		kept := "Its accounts and their data are kept in memory: they are gone when this stops."
		if *dir != "" {
			kept = fmt.Sprintf("Its accounts and their data are kept in %s: run again with the same --data-dir to go on with them.", *dir)
		}
		fmt.Fprintf(stdout, `
An emulated AWS organization serves at %[1]s (region %[2]s).
%[3]s

In another shell, in your project's directory (one with a silo.yaml: silo init demo && cd demo
makes one), give silo its address and any credentials (the emulator checks none), then use the
AWS provider on a new data dir:

  export AWS_ENDPOINT_URL=%[1]s AWS_REGION=%[2]s AWS_ACCESS_KEY_ID=emulated AWS_SECRET_ACCESS_KEY=emulated
  silo tenant create acme --provider aws --aws-region %[2]s --aws-email aws@example.com --data-dir ./aws-try
  silo tenant show acme --data-dir ./aws-try

Ctrl-C stops the organization.
`, org.URL(), awstest.Region, kept)
	})
	if status != 0 {
		return status
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nstopping the organization")
	case <-o.fatal:
		status = 1
	}
	o.cleanup()
	return status
}

// owner is the emulation's owner (awstest.T) for this process: cleanups
// run when it stops, errors are written to stderr, and a fatal error
// stops it.
type owner struct {
	out, err io.Writer

	mu       sync.Mutex
	cleanups []func()
	started  bool          // the organization serves: a fatal error comes from a request
	fatal    chan struct{} // closed on the first fatal error
	once     sync.Once
}

// run calls start, and returns 1 if it failed fatally (after cleaning
// up), else 0.
func (o *owner) run(start func()) (status int) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalError); !ok {
				panic(r)
			}
			o.cleanup()
			status = 1
		}
	}()
	start()
	o.mu.Lock()
	o.started = true
	o.mu.Unlock()
	return 0
}

// fatalError is what Fatal panics with on the goroutine that starts the
// organization, to end it.
type fatalError struct{}

func (o *owner) Helper() {}

func (o *owner) Cleanup(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cleanups = append(o.cleanups, f)
}

func (o *owner) Logf(format string, args ...any) {
	fmt.Fprintf(o.out, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (o *owner) Errorf(format string, args ...any) {
	fmt.Fprintf(o.err, "silo-aws-emulator: %s\n", fmt.Sprintf(format, args...))
}

func (o *owner) Fatal(args ...any) { o.Fatalf("%s", fmt.Sprint(args...)) }

// Fatalf reports the error and stops the emulator: while it starts, at
// once; later (a member account's kumo that did not start, on a request's
// goroutine), by waking run, which cleans up and exits.
func (o *owner) Fatalf(format string, args ...any) {
	o.Errorf(format, args...)
	o.once.Do(func() { close(o.fatal) })
	o.mu.Lock()
	started := o.started
	o.mu.Unlock()
	if started {
		panic(http.ErrAbortHandler) // net/http drops the request without a stack trace
	}
	panic(fatalError{})
}

// cleanup runs the cleanups, the last registered first, once.
func (o *owner) cleanup() {
	o.mu.Lock()
	cs := o.cleanups
	o.cleanups = nil
	o.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}
