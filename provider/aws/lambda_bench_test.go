package aws

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/build"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// go test ./provider/aws -run '^$' -bench LambdaHost -benchtime 50x
//
// BenchmarkLambdaHost measures, side by side in one run against the
// emulator's Runtime API, the silo Lambda host running the example's list
// function (GET /findings over 10 findings) and a native Go Lambda handler
// doing the same work (testdata/nativefn: one DynamoDB Query, the items as
// JSON). Each iteration invokes both warm (lambda:Invoke, so the emulator's
// own cost is in both); host/native is the ratio of their mean latencies.
// BenchmarkLambdaHostColdStart starts a fresh process of each and
// measures process start to first response.
func BenchmarkLambdaHost(b *testing.B) {
	o, invoke := benchSetup(b)
	defer o.stopAll()
	var host, native time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		host += invoke(lambdaName("list"))
		native += invoke("native")
	}
	b.StopTimer()
	report(b, host, native)
}

// BenchmarkLambdaHostColdStart starts, in each round and in turn, a fresh
// host process for each way the host can start, and a fresh native
// handler, and times process start (the package unpacked, as Lambda has
// it before it starts the process) to first response (lambda:Invoke
// returning). The ways: "precompiled" (the package as built on a machine
// of the function's architecture: the host loads the machine code in it);
// "interpreter" (the package without its prepared part, as built on a
// machine of the other architecture: the host serves on the interpreter
// while it compiles); "compile" (SILO_LAMBDA_ENGINE=compiler: compile to
// machine code before serving, the host's behaviour before packages held
// code). "proc" is the host's process alone: started without its
// environment, it exits at once (exec to exit). Each reports its mean,
// p50 and max (the p99 of so few samples) in ms; setup-ms and first-ms
// are the host's own figures from its log (start to module ready; the
// first invocation, instantiation included).
func BenchmarkLambdaHostColdStart(b *testing.B) {
	o, invoke := benchSetup(b)
	defer o.stopAll()
	crossArch := func(t testing.TB, root string) { os.RemoveAll(filepath.Join(root, "prepared")) }
	ways := []struct {
		name string
		opt  hostOptions
	}{
		{"precompiled", hostOptions{}},
		{"interpreter", hostOptions{unpacked: crossArch}},
		{"compile", hostOptions{env: []string{"SILO_LAMBDA_ENGINE=compiler"}}},
	}
	samples := map[string][]time.Duration{}
	setup, first := map[string][]time.Duration{}, map[string][]time.Duration{}
	host := o.hostBinary()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, w := range ways {
			o.stopAll()
			var t0 time.Time
			opt := w.opt
			opt.started = func() { t0 = time.Now() }
			stop, out := o.startHostWith(b, "acme", "list", opt)
			invoke(lambdaName("list"))
			samples[w.name] = append(samples[w.name], time.Since(t0))
			stop()
			s, f := hostFigures(out.String())
			setup[w.name], first[w.name] = append(setup[w.name], s), append(first[w.name], f)
		}
		o.stopAll()
		t0 := time.Now()
		o.startNative()
		invoke("native")
		samples["native"] = append(samples["native"], time.Since(t0))
		o.stopAll()

		t0 = time.Now()
		exec.Command(host).Run() // refuses at once: no SILO_ACCOUNT
		samples["proc"] = append(samples["proc"], time.Since(t0))
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for name, ds := range samples {
		slices.Sort(ds)
		var sum time.Duration
		for _, d := range ds {
			sum += d
		}
		b.ReportMetric(ms(sum/time.Duration(len(ds))), name+"-mean-ms")
		b.ReportMetric(ms(ds[len(ds)/2]), name+"-p50-ms")
		b.ReportMetric(ms(ds[len(ds)-1]), name+"-max-ms")
		if s := setup[name]; len(s) > 0 {
			slices.Sort(s)
			slices.Sort(first[name])
			b.ReportMetric(ms(s[len(s)/2]), name+"-setup-p50-ms")
			b.ReportMetric(ms(first[name][len(s)/2]), name+"-first-p50-ms")
		}
	}
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f, err := strconv.ParseFloat(strings.Fields(string(l))[0], 64); err == nil {
			b.ReportMetric(f, "load1")
		}
	}
}

// hostFigures reads from a host's output how long its start took (its
// "module ready" line) and its first invocation (its first metrics record).
func hostFigures(out string) (setup, first time.Duration) {
	for _, line := range strings.Split(out, "\n") {
		var l struct {
			Msg    string `json:"msg"`
			TookMS int64  `json:"took_ms"`
			Func   string `json:"function"`
			Micros int64  `json:"us"`
		}
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		switch {
		case l.Msg == "module ready":
			setup = time.Duration(l.TookMS) * time.Millisecond
		case l.Msg == "" && l.Func != "" && first == 0:
			first = time.Duration(l.Micros) * time.Microsecond
		}
	}
	return setup, first
}

// hostBinary writes the Lambda host to a file and returns its path.
func (o *benchOrg) hostBinary() string {
	bin, err := lambdaHost()
	if err != nil {
		o.b.Fatal(err)
	}
	p := filepath.Join(o.b.TempDir(), "bootstrap")
	if err := os.WriteFile(p, bin, 0o755); err != nil {
		o.b.Fatal(err)
	}
	return p
}

func report(b *testing.B, host, native time.Duration) {
	n := float64(b.N)
	b.ReportMetric(float64(host.Microseconds())/n, "host-µs/op")
	b.ReportMetric(float64(native.Microseconds())/n, "native-µs/op")
	b.ReportMetric(float64(host)/float64(native), "host/native")
	if l, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f, err := strconv.ParseFloat(strings.Fields(string(l))[0], 64); err == nil {
			b.ReportMetric(f, "load1")
		}
	}
}

type benchOrg struct {
	*fnOrg
	b             *testing.B
	awsID         string
	native        string // the native handler's binary
	startList     func()
	startNative   func()
	startHostWith func(b testing.TB, acct silo.AccountID, fn string, opt hostOptions) (func(), *bytes.Buffer)
	stops         []func()
}

func (o *benchOrg) stopAll() {
	for _, s := range o.stops {
		s()
	}
	o.stops = nil
}

// benchSetup deploys the example's list function and the native baseline
// in one tenant account with 10 findings, starts both, and returns an
// invoke that times one warm call.
func benchSetup(b *testing.B) (*benchOrg, func(fn string) time.Duration) {
	if _, err := lambdaHost(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	arts := map[string]build.Artifact{"ingest": example(b, "ingest"), "list": example(b, "list")}
	o := &benchOrg{fnOrg: newFnOrg(b, arts), b: b}
	o.deployFindings(b, "acme", arts)
	o.awsID = o.fnOrg.awsID(b, "acme")
	d, err := o.p.Data(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		v := `{"id":"f-` + strconv.Itoa(i) + `","severity":"high","app":"github","status":"open","remediation":"manual"}`
		if err := d.Put(ctx, "findings", "f-"+strconv.Itoa(i), []byte(v)); err != nil {
			b.Fatal(err)
		}
	}
	o.native = filepath.Join(b.TempDir(), "nativefn")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", o.native, "./testdata/nativefn").CombinedOutput(); err != nil {
		b.Fatalf("build the native baseline: %v\n%s", err, out)
	}
	m := o.p.member(o.awsID)
	_, err = m.fn.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName: aws.String("native"), Role: aws.String(functionRoleARN(o.awsID, "native")),
		Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
		Code: &lambdatypes.FunctionCode{ZipFile: []byte("native")}, Timeout: aws.Int32(3),
	})
	if err != nil {
		b.Fatal(err)
	}
	o.startList = func() {
		stop, _ := o.startHost(b, "acme", "list")
		o.stops = append(o.stops, stop)
	}
	o.startHostWith = func(b testing.TB, acct silo.AccountID, fn string, opt hostOptions) (func(), *bytes.Buffer) {
		stop, out := o.fnOrg.startHostWith(b, acct, fn, opt)
		o.stops = append(o.stops, stop)
		return stop, out
	}
	o.startNative = func() {
		cmd := exec.Command(o.native)
		cmd.Env = []string{
			"AWS_LAMBDA_RUNTIME_API=" + o.org.RuntimeAPI(o.awsID, "native"),
			"AWS_REGION=" + awstest.Region, "AWS_ACCESS_KEY_ID=AKIDEMULATED", "AWS_SECRET_ACCESS_KEY=emulated",
			"AWS_EC2_METADATA_DISABLED=true", "SILO_AWS_ENDPOINT=" + o.org.Endpoint(o.awsID),
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		o.stops = append(o.stops, func() { cmd.Process.Kill(); cmd.Wait() })
	}
	payload, _ := json.Marshal(map[string]any{"silo_invoke": map[string]string{"method": "GET", "path": "/findings"}})
	invoke := func(fn string) time.Duration {
		t0 := time.Now()
		out, err := m.fn.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: payload})
		d := time.Since(t0)
		if err != nil || out.FunctionError != nil || !strings.Contains(string(out.Payload), `"statusCode":200`) || !strings.Contains(string(out.Payload), "f-9") {
			b.Fatalf("invoke %s: %v %s", fn, err, out.Payload)
		}
		return d
	}
	o.startList()
	o.startNative()
	// Until both poll the Runtime API.
	for _, fn := range []string{lambdaName("list"), "native"} {
		for i := 0; ; i++ {
			out, err := m.fn.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(fn), Payload: payload})
			if err == nil && out.FunctionError == nil {
				break
			}
			if i == 200 {
				b.Fatalf("%s never answered: %v", fn, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return o, invoke
}
