package aws

import (
	"context"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// InvocationRecord is the metrics line the silo Lambda host writes to its
// output (and so to CloudWatch Logs) for every invocation it serves: which
// release served it, what it answered and how long it took. It holds
// nothing of the request or the answer.
type InvocationRecord struct {
	Account  silo.AccountID `json:"silo_invocation"`
	Function string         `json:"function"`
	// Release is the release the function's version serves under
	// (SILO_RELEASE in its environment).
	Release string `json:"release,omitempty"`
	// Status is the HTTP status answered; Failed is true when the
	// invocation itself failed (the status is then silo's error's).
	Status int   `json:"status"`
	Failed bool  `json:"failed,omitempty"`
	Micros int64 `json:"us"`
}

// Line returns the record as one JSON line.
func (r InvocationRecord) Line() []byte {
	b, _ := json.Marshal(r)
	return append(b, '\n')
}

// parseInvocation reads a line written by InvocationRecord.Line; false for
// anything else (log lines have no "silo_invocation").
func parseInvocation(msg string) (InvocationRecord, bool) {
	if len(msg) == 0 || msg[0] != '{' {
		return InvocationRecord{}, false
	}
	var r InvocationRecord
	if json.Unmarshal([]byte(msg), &r) != nil || r.Account == "" {
		return InvocationRecord{}, false
	}
	return r, true
}

const (
	// metricsTTL is how long Snapshot answers from what it read last.
	metricsTTL = 5 * time.Second
	// metricsLookback is how far back the first read of an account goes:
	// the fixed start of its counters.
	metricsLookback = time.Hour
	// metricsLag is how far back each later read starts again, for lines
	// CloudWatch Logs takes in late; lines already counted are skipped by
	// their event ID.
	metricsLag = time.Minute
	// maxMetricsPages bounds the pages one read takes per log group; the
	// next read goes on from there.
	maxMetricsPages = 50
	// metricsReadTimeout bounds one read of an account's log groups.
	metricsReadTimeout = 30 * time.Second
)

// gateMetrics are the counters Snapshot keeps per account.
type gateMetrics struct {
	mu    sync.Mutex
	accts map[silo.AccountID]*acctMetrics
}

type acctMetrics struct {
	mu     sync.Mutex
	read   time.Time                        // when the last read finished
	start  int64                            // the counters' start (ms)
	cursor map[string]int64                 // log group → newest line read (ms)
	seen   map[string]int64                 // event already counted → its time (ms)
	stats  map[string]*provider.Invocations // release → counters
}

// Invocations returns the requests account id's functions served on Lambda
// under release, counted from the host's metrics lines
// (InvocationRecord) in the account's CloudWatch Logs groups
// (/aws/lambda/silo-fn-*, through the deployer role): errors are failed
// invocations and 5xx answers, the latency histogram is silo's
// (silo.LatencyBucket); the platform gives them to the rollout gates. The counters start an
// hour before the account's first Snapshot and only grow; a read is reused
// for 5 seconds, and each read takes at most 50 pages per log group,
// going on from there the next time.
//
// # Errors
//
// CodeNotFound if the account does not exist; CodeUnavailable if AWS
// throttles the reads.
func (p *Provider) Invocations(id silo.AccountID, release string) (provider.Invocations, error) {
	if err := parseID(id); err != nil {
		return provider.Invocations{}, err
	}
	p.gates.mu.Lock()
	if p.gates.accts == nil {
		p.gates.accts = map[silo.AccountID]*acctMetrics{}
	}
	a := p.gates.accts[id]
	if a == nil {
		a = &acctMetrics{start: time.Now().Add(-metricsLookback).UnixMilli(), cursor: map[string]int64{},
			seen: map[string]int64{}, stats: map[string]*provider.Invocations{}}
		p.gates.accts[id] = a
	}
	p.gates.mu.Unlock()

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.read.IsZero() || time.Since(a.read) >= metricsTTL {
		ctx, cancel := context.WithTimeout(context.Background(), metricsReadTimeout)
		defer cancel()
		if err := p.readMetrics(ctx, id, a); err != nil {
			return provider.Invocations{}, err
		}
		a.read = time.Now()
	}
	s := a.stats[release]
	if s == nil {
		return provider.Invocations{}, nil
	}
	return provider.Invocations{Requests: s.Requests, Errors: s.Errors, Latency: maps.Clone(s.Latency)}, nil
}

// readMetrics adds the metrics lines written since the last read to a;
// a.mu is held.
func (p *Provider) readMetrics(ctx context.Context, id silo.AccountID, a *acctMetrics) error {
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return err
	}
	m := p.member(awsID)
	var groups []string
	gin := &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(logGroupPrefix)}
	for {
		out, err := m.cwl.DescribeLogGroups(ctx, gin)
		if err != nil {
			return fail(id, "list the functions' log groups", err)
		}
		for _, g := range out.LogGroups {
			groups = append(groups, aws.ToString(g.LogGroupName))
		}
		if out.NextToken == nil {
			break
		}
		gin.NextToken = out.NextToken
	}
	for _, g := range groups {
		from := a.start
		if c, ok := a.cursor[g]; ok {
			from = max(c-metricsLag.Milliseconds(), a.start)
		}
		newest := a.cursor[g]
		// The page size is asked for: 10,000 is AWS's default and most,
		// and the emulator otherwise answers 50 events without a next page.
		in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(g), StartTime: aws.Int64(from), Limit: aws.Int32(10000)}
		for range maxMetricsPages {
			out, err := m.cwl.FilterLogEvents(ctx, in)
			if isCode(err, "ResourceNotFoundException") {
				break // deleted meanwhile
			}
			if err != nil {
				return fail(id, "read the log group "+g, err)
			}
			for _, e := range out.Events {
				r, ok := parseInvocation(aws.ToString(e.Message))
				ts := aws.ToInt64(e.Timestamp)
				if !ok || r.Account != id || ts < a.start {
					continue
				}
				key := g + "\x00" + aws.ToString(e.LogStreamName) + "\x00" + aws.ToString(e.EventId) + "\x00" + strconv.FormatInt(ts, 10)
				if _, dup := a.seen[key]; dup {
					continue
				}
				a.seen[key] = ts
				newest = max(newest, ts)
				s := a.stats[r.Release]
				if s == nil {
					s = &provider.Invocations{Latency: map[int]uint64{}}
					a.stats[r.Release] = s
				}
				s.Requests++
				if r.Failed || r.Status >= 500 {
					s.Errors++
				}
				s.Latency[silo.LatencyBucket(time.Duration(r.Micros)*time.Microsecond)]++
			}
			if out.NextToken == nil || len(out.Events) == 0 {
				break
			}
			in.NextToken = out.NextToken
		}
		a.cursor[g] = newest
	}
	// Forget the events no later read can return again.
	for k, ts := range a.seen {
		g, _, _ := strings.Cut(k, "\x00")
		if ts < a.cursor[g]-metricsLag.Milliseconds() {
			delete(a.seen, k)
		}
	}
	return nil
}
