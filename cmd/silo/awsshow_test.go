package main

import (
	"context"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// awsIDIn returns the AWS account ID silo tenant show prints on its
// Provider line.
func awsIDIn(t *testing.T, show string) string {
	t.Helper()
	m := regexp.MustCompile(`Provider\s+aws account ([0-9]{12})`).FindStringSubmatch(show)
	if m == nil {
		t.Fatalf("no AWS account ID in:\n%s", show)
	}
	return m[1]
}

// resourceRows returns the rows of the Resources table of silo tenant show.
func resourceRows(show string) []string {
	_, rest, _ := strings.Cut(show, "\nResources\n")
	rest, _, _ = strings.Cut(rest, "\n\n")
	lines := strings.Split(strings.TrimSpace(rest), "\n")
	if len(lines) < 2 {
		return nil
	}
	return lines[1:] // after the header
}

// wantUnread checks that silo tenant show output out lists a problem whose
// fix points to docs/aws.md's "Faults and bad input", and every resource
// as unknown, not read for why, none applied.
func wantUnread(t *testing.T, out, why string) {
	t.Helper()
	if !strings.Contains(out, "\nProblems\n") || !strings.Contains(out, `fix: see docs/aws.md ("Faults and bad input")`) {
		t.Errorf("no problem pointing to docs/aws.md \"Faults and bad input\":\n%s", out)
	}
	if strings.Contains(out, "operations.md") {
		t.Errorf("points to docs/operations.md for an AWS fault:\n%s", out)
	}
	rows := resourceRows(out)
	if len(rows) == 0 {
		t.Fatalf("no resources listed:\n%s", out)
	}
	for _, r := range rows {
		if !strings.Contains(r, "unknown (not read: "+why+")") || strings.Contains(r, "applied") {
			t.Errorf("resource row %q; want it unknown (not read: %s)", r, why)
		}
	}
}

// wantApplied checks that out lists no problem and every resource applied.
func wantApplied(t *testing.T, out string) {
	t.Helper()
	if strings.Contains(out, "Problems") || strings.Contains(out, "unknown") {
		t.Errorf("problems or unknown resources:\n%s", out)
	}
	rows := resourceRows(out)
	if len(rows) == 0 {
		t.Fatalf("no resources listed:\n%s", out)
	}
	for _, r := range rows {
		if !strings.Contains(r, "applied") {
			t.Errorf("resource row %q; want it applied", r)
		}
	}
}

// TestTenantShowWhenAWSCannotBeRead: silo tenant show of an account that
// the AWS provider cannot read (AWS denies the read of its resources; the
// emulated organization stopped, through a running server) points to
// docs/aws.md's "Faults and bad input" and lists each resource as unknown,
// never as applied; with AWS answering, the same command lists them
// applied with no problem (the twins).
func TestTenantShowWhenAWSCannotBeRead(t *testing.T) {
	awsEnv(t, true)
	outer := t
	var f *remoteFixture
	var url string
	t.Run("organization running", func(t *testing.T) {
		org := awstest.Serve(t, "127.0.0.1:0", t.TempDir())
		url = org.URL()
		t.Setenv("AWS_ENDPOINT_URL", url)
		// The server outlives this subtest (and the organization).
		f = startRemoteOn(outer, newCLI(t).file, func(f *remoteFixture) {
			f.local("--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "tenant", "create", "acme", "--no-key")
		})
		local, remote := f.local("tenant", "show", "acme"), f.remote("tenant", "show", "acme")
		wantApplied(t, local)
		wantApplied(t, remote)
		awsID := awsIDIn(t, local)

		org.Inject(awsID, "GetParametersByPath", awstest.Fault{Code: "AccessDeniedException"})
		for name, show := range map[string]func(...string) string{"locally": f.local, "through the server": f.remote} {
			out := show("tenant", "show", "acme")
			t.Logf("AWS denies the read, %s:\n%s", name, out)
			wantUnread(t, out, "AWS denied access")
		}
		org.Clear(awsID)
		wantApplied(t, f.remote("tenant", "show", "acme"))
	})
	if t.Failed() || f == nil {
		return
	}
	t.Setenv("AWS_ENDPOINT_URL", url) // nothing listens there any more
	out := f.remote("tenant", "show", "acme")
	t.Logf("the organization stopped, through the server:\n%s", out)
	wantUnread(t, out, "AWS unreachable")
}

// switchProxy forwards TCP connections to an address until it goes
// silent: then it drops the connections it forwards, and accepts new ones
// without ever answering (a network that drops every reply), counting
// them.
type switchProxy struct {
	l      net.Listener
	to     string
	silent atomic.Bool
	held   atomic.Int64 // connections accepted while silent
	mu     sync.Mutex
	conns  []net.Conn
}

func newSwitchProxy(t *testing.T, to string) *switchProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &switchProxy{l: l, to: to}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.keep(c)
			if p.silent.Load() {
				p.held.Add(1)
				continue
			}
			go func() {
				up, err := net.Dial("tcp", p.to)
				if err != nil {
					c.Close()
					return
				}
				p.keep(up)
				go io.Copy(up, c)
				io.Copy(c, up)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); p.closeAll() })
	return p
}

func (p *switchProxy) keep(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *switchProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// goSilent drops every forwarded connection; new ones are held unanswered.
func (p *switchProxy) goSilent() {
	p.silent.Store(true)
	p.closeAll()
}

func (p *switchProxy) URL() string { return "http://" + p.l.Addr().String() }

// TestTenantShowStopsAtSilentAWS: through a running server, silo tenant
// show of an account whose AWS endpoint accepts connections and never
// answers waits for one AWS call, not for each of its reads, and lists
// the resources as unknown (AWS unreachable); the same command before
// AWS went silent lists them applied (the twin). The calls are counted as
// the connections the silent endpoint accepted.
func TestTenantShowStopsAtSilentAWS(t *testing.T) {
	awsEnv(t, true)
	org := awstest.Serve(t, "127.0.0.1:0", t.TempDir())
	proxy := newSwitchProxy(t, strings.TrimPrefix(org.URL(), "http://"))
	t.Setenv("AWS_ENDPOINT_URL", proxy.URL())
	f := startRemoteOn(t, newCLI(t).file, func(f *remoteFixture) {
		f.local("--provider", "aws", "--aws-region", awstest.Region, "--aws-email", "aws@example.com", "tenant", "create", "acme", "--no-key")
		// The server's provider waits a short time for an answer, so
		// that the silent endpoint's attempts end soon.
		old := loadAWS
		t.Cleanup(func() { loadAWS = old })
		loadAWS = func(ctx context.Context, region string, cfg siloaws.Config) (provider.Provider, error) {
			cfg.AnswerTimeout = 2 * time.Second
			return old(ctx, region, cfg)
		}
	})
	wantApplied(t, f.remote("tenant", "show", "acme"))

	proxy.goSilent()
	out := f.remote("tenant", "show", "acme")
	t.Logf("AWS silent, through the server:\n%s", out)
	wantUnread(t, out, "AWS unreachable")
	if n := proxy.held.Load(); n != 1 {
		t.Errorf("silo tenant show made %d AWS calls to an endpoint that never answers, want 1", n)
	}
}
