package awstest

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/smithy-go"
)

// Container is a handler process of one Lambda function of a
// NewFunctionOrg, started as Lambda starts a container of a version: the
// deployment package unpacked in a task root, the function's environment
// plus the credentials of its execution role, its bootstrap polling the
// account's Runtime API. The emulator runs no function itself, so tests
// play this part of Lambda with Org.Run.
type Container struct {
	Account, Name string
	Code          FunctionCode

	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}

	mu      sync.Mutex
	stream  string
	shipped int // bytes of out already put into the log group
}

// lockedBuffer is a bytes.Buffer the process writes while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Output returns what the container wrote so far (stdout and stderr).
func (c *Container) Output() string { return c.out.String() }

// Stop ends the container and waits for it.
func (c *Container) Stop() {
	c.cmd.Process.Signal(syscall.SIGCONT) // a frozen process cannot die
	c.cmd.Process.Kill()
	<-c.done
}

// Freeze stops the container's process without ending it (SIGSTOP), as a
// handler stuck past the function's Lambda timeout; Thaw lets it go on.
func (c *Container) Freeze() { c.cmd.Process.Signal(syscall.SIGSTOP) }

// Thaw resumes a frozen container.
func (c *Container) Thaw() { c.cmd.Process.Signal(syscall.SIGCONT) }

// Exited reports whether the container's process has ended.
func (c *Container) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Run makes a container of Lambda function name in account run what
// qualifier (a version, an alias or "$LATEST") names: the running one if it
// runs the same package and environment, else a new one (the old one is
// stopped), as Lambda starts containers of the version an alias has moved
// to. It returns false if the qualifier names no code. Containers end with
// the test; what a container wrote is logged when the test has failed.
func (o *Org) Run(account, name, qualifier string) (*Container, bool) {
	code, ok := o.Function(account, name, qualifier)
	if !ok {
		return nil, false
	}
	key := account + "/" + name
	o.mu.Lock()
	if o.containers == nil {
		o.containers = map[string]*Container{}
		o.t.Cleanup(o.stopContainers)
	}
	c := o.containers[key]
	o.mu.Unlock()
	if c != nil && !c.Exited() && bytes.Equal(c.Code.Zip, code.Zip) && maps.Equal(c.Code.Env, code.Env) {
		return c, true
	}
	if c != nil {
		c.Stop()
	}
	c, err := o.start(account, name, code)
	if err != nil {
		o.t.Errorf("start a container of %s in %s: %v", name, account, err)
		return nil, false
	}
	o.mu.Lock()
	o.containers[key] = c
	o.mu.Unlock()
	return c, true
}

func (o *Org) start(account, name string, code FunctionCode) (*Container, error) {
	root, err := os.MkdirTemp("", "lambda-task-")
	if err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(bytes.NewReader(code.Zip), int64(len(code.Zip)))
	if err != nil {
		return nil, fmt.Errorf("the deployment package is not a zip: %w", err)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		// The package keeps its prepared code in a directory (the host's
		// start paths, provider/aws lambda.go); no name leaves the root.
		p := filepath.Join(root, filepath.FromSlash(f.Name))
		if !strings.HasPrefix(p, root+string(filepath.Separator)) {
			return nil, fmt.Errorf("the deployment package names %q, outside its root", f.Name)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, b, f.Mode().Perm()); err != nil {
			return nil, err
		}
	}
	// Lambda's /tmp: the only place a function may write.
	tmp := filepath.Join(root, ".tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(root, "bootstrap"))
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + o.RuntimeAPI(account, name), "LAMBDA_TASK_ROOT=" + root,
		"AWS_REGION=" + Region, "AWS_ACCESS_KEY_ID=AKIDEMULATED", "AWS_SECRET_ACCESS_KEY=emulated",
		"AWS_EC2_METADATA_DISABLED=true", "HOME=" + root, "TMPDIR=" + tmp,
	}
	for k, v := range code.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	c := &Container{Account: account, Name: name, Code: code, cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{}),
		stream: fmt.Sprintf("%s/[%s]%d", time.Now().UTC().Format("2006/01/02"), code.Version, time.Now().UnixNano())}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	go func() { cmd.Wait(); os.RemoveAll(root); close(c.done) }()
	return c, nil
}

func (o *Org) stopContainers() {
	o.mu.Lock()
	cs := slices.Collect(maps.Values(o.containers))
	o.containers = nil
	o.mu.Unlock()
	for _, c := range cs {
		c.Stop()
		if tf, ok := o.t.(interface{ Failed() bool }); ok && tf.Failed() {
			o.t.Logf("container %s of %s:\n%s", c.Name, c.Account, c.Output())
		}
	}
}

// Functions returns the names of the Lambda functions of account deployed
// through Endpoint, sorted.
func (o *Org) Functions(account string) []string {
	o.mu.Lock()
	f := o.fronts[account]
	o.mu.Unlock()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.fns))
}

// ShipLogs puts what account's containers wrote since the last call into
// their functions' log groups (/aws/lambda/<name>, one stream per
// container), line by line, as Lambda sends a function's output to
// CloudWatch Logs (the emulator does not).
func (o *Org) ShipLogs(ctx context.Context, account string) error {
	o.mu.Lock()
	var cs []*Container
	for _, c := range o.containers {
		if c.Account == account {
			cs = append(cs, c)
		}
	}
	o.mu.Unlock()
	cwl := cloudwatchlogs.NewFromConfig(o.Config(), func(opt *cloudwatchlogs.Options) { opt.BaseEndpoint = aws.String(o.Endpoint(account)) })
	for _, c := range cs {
		if err := c.ship(ctx, cwl); err != nil {
			return fmt.Errorf("ship the output of %s in %s: %w", c.Name, account, err)
		}
	}
	return nil
}

func (c *Container) ship(ctx context.Context, cwl *cloudwatchlogs.Client) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.out.String()
	end := strings.LastIndexByte(out, '\n') + 1
	if end <= c.shipped {
		return nil
	}
	group := aws.String("/aws/lambda/" + c.Name)
	if c.shipped == 0 {
		_, err := cwl.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: group})
		var ae smithy.APIError
		if err != nil && !(errors.As(err, &ae) && ae.ErrorCode() == "ResourceAlreadyExistsException") {
			return err
		}
		if _, err := cwl.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: group, LogStreamName: aws.String(c.stream)}); err != nil {
			return err
		}
	}
	now := time.Now().UnixMilli()
	var events []cwltypes.InputLogEvent
	for _, line := range strings.Split(strings.TrimSuffix(out[c.shipped:end], "\n"), "\n") {
		events = append(events, cwltypes.InputLogEvent{Timestamp: aws.Int64(now), Message: aws.String(line)})
	}
	if _, err := cwl.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: aws.String(c.stream), LogEvents: events}); err != nil {
		return err
	}
	c.shipped = end
	return nil
}
