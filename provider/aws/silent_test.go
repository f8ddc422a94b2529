package aws_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
)

// silentListener accepts TCP connections and never answers on them, as an
// endpoint behind a network that drops every reply does; it counts the
// connections it accepted (one per attempt: the SDK drops a connection
// whose answer timed out).
type silentListener struct {
	l        net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func newSilentListener(t testing.TB) *silentListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentListener{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *silentListener) URL() string { return "http://" + s.l.Addr().String() }

// providerAt returns a provider whose every AWS endpoint is url, with
// static credentials, attempts bounded by maxAttempts and an answer
// timeout of a few milliseconds.
func providerAt(t *testing.T, url string, maxAttempts int) *siloaws.Provider {
	t.Helper()
	p, err := siloaws.New(siloaws.Config{
		AWS:         aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "example", "")},
		Email:       "aws@example.com",
		MaxAttempts: maxAttempts, MaxBackoff: time.Millisecond, AnswerTimeout: 50 * time.Millisecond,
		Endpoint: func(string) string { return url },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSilentEndpointIsNotRetried: a control-plane call to an endpoint that
// accepts the connection and never answers (a network that drops the
// replies) times out once, is not retried through the retry schedule, and
// fails with one sentence saying AWS cannot be reached; a call to an
// endpoint that answers with a 5xx is retried up to Config.MaxAttempts
// (the twin: the count can go past one). Attempts are counted as the
// connections or requests the endpoint received, never timed.
func TestSilentEndpointIsNotRetried(t *testing.T) {
	t.Parallel()
	const maxAttempts = 4
	ctx := context.Background()

	t.Run("silent endpoint: one attempt", func(t *testing.T) {
		silent := newSilentListener(t)
		_, err := providerAt(t, silent.URL(), maxAttempts).Accounts(ctx)
		checkFault(t, err, silo.CodeUnavailable, "silo cannot reach AWS", "nothing answered at its address in time", "AWS_ENDPOINT_URL")
		if n := silent.accepted.Load(); n != 1 {
			t.Errorf("%d attempts at an endpoint that never answers, want 1", n)
		}
		if cause := silo.Cause(err); cause == nil || !strings.Contains(cause.Error(), "timeout") {
			t.Errorf("the cause %v does not keep the network's error", cause)
		}
	})
	t.Run("failing endpoint: retried up to MaxAttempts", func(t *testing.T) {
		var requests atomic.Int64
		failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"__type":"ServiceException","message":"failing"}`))
		}))
		t.Cleanup(failing.Close)
		_, err := providerAt(t, failing.URL, maxAttempts).Accounts(ctx)
		checkFault(t, err, silo.CodeUnavailable, "kept failing")
		if n := requests.Load(); n != maxAttempts {
			t.Errorf("%d attempts at an endpoint that answers 500, want %d", n, maxAttempts)
		}
	})
}
