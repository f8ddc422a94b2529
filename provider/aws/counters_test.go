package aws_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// counterAccount returns acme's data plane, with the table findings, and
// acme's AWS account ID.
func counterAccount(t *testing.T, p *siloaws.Provider) (provider.Data, string) {
	t.Helper()
	ctx := context.Background()
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	table, err := silo.NewResource(silo.TypeTable, "findings", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: table.Type, Name: table.Name, Desired: &table}); err != nil {
		t.Fatal(err)
	}
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	return d, awsIDOf(t, p, "acme")
}

// TestAddRetriesALostRace lands another write between Add's read and its
// conditional write, through the emulator: Add must see its write refused,
// read again and add to what the other write left, never overwrite it.
func TestAddRetriesALostRace(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t, quick)
	d, awsID := counterAccount(t, p)
	tests := []struct {
		name    string
		start   string // "" for a missing key
		between func(key string) error
		want    int64
	}{
		{"Put over a value", "5", func(k string) error { return d.Put(ctx, "findings", k, []byte("100")) }, 101},
		{"Put of the same value", "5", func(k string) error { return d.Put(ctx, "findings", k, []byte("5")) }, 6},
		{"Put of a missing key", "", func(k string) error { return d.Put(ctx, "findings", k, []byte("7")) }, 8},
		{"Delete", "5", func(k string) error { return d.Delete(ctx, "findings", k) }, 1},
		{"another Add", "5", func(k string) error { _, err := d.Add(ctx, "findings", k, 10); return err }, 16},
		{"another Add of a missing key", "", func(k string) error { _, err := d.Add(ctx, "findings", k, 10); return err }, 11},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "n" + strconv.Itoa(i)
			if tt.start != "" {
				if err := d.Put(ctx, "findings", key, []byte(tt.start)); err != nil {
					t.Fatal(err)
				}
			}
			var ran atomic.Bool // set on the emulator front's goroutine
			org.Before(awsID, "PutItem", func() {
				ran.Store(true)
				if err := tt.between(key); err != nil {
					t.Errorf("the write between: %v", err)
				}
			})
			got, err := d.Add(ctx, "findings", key, 1)
			if !ran.Load() {
				t.Fatal("no write landed between Add's read and its write")
			}
			if err != nil || got != tt.want {
				t.Errorf("Add = %d, %v; want %d", got, err, tt.want)
			}
			if v, err := d.Get(ctx, "findings", key); err != nil || string(v) != strconv.FormatInt(tt.want, 10) {
				t.Errorf("Get = %q, %v; want %d", v, err, tt.want)
			}
		})
	}
}

// TestAddAcrossClients races Adds of two providers (two servers) on one
// account: each has its own clients, so only DynamoDB orders them.
func TestAddAcrossClients(t *testing.T) {
	ctx := context.Background()
	p, org := newAWS(t, quick)
	d1, _ := counterAccount(t, p)
	p2, _ := newProviderOn(t, org)
	d2, err := p2.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	const each, per = 10, 4
	sums := make(chan int64, 2*per*each)
	var wg sync.WaitGroup
	for _, d := range []provider.Data{d1, d2} {
		for range per {
			wg.Go(func() {
				for range each {
					n, err := d.Add(ctx, "findings", "hits", 1)
					if err != nil {
						t.Errorf("Add: %v", err)
						return
					}
					sums <- n
				}
			})
		}
	}
	wg.Wait()
	close(sums)
	seen := map[int64]bool{}
	for n := range sums {
		if seen[n] || n < 1 || n > 2*per*each {
			t.Errorf("sum %d returned twice or out of 1..%d", n, 2*per*each)
		}
		seen[n] = true
	}
	if v, err := d2.Get(ctx, "findings", "hits"); err != nil || string(v) != strconv.Itoa(2*per*each) || len(seen) != 2*per*each {
		t.Errorf("value %q, %v and %d distinct sums; want %d of each", v, err, len(seen), 2*per*each)
	}
}

// TestAddFaults: a failing or refusing DynamoDB gives one clear error
// without AWS's text and changes nothing; with the fault gone, Add works.
func TestAddFaults(t *testing.T) {
	tests := []struct {
		name    string
		op      string
		fault   awstest.Fault
		code    silo.Code
		says    []string
		faulted int
	}{
		{"failing read", "GetItem", awstest.Fault{Code: "InternalServerError", Status: 500},
			silo.CodeUnavailable, []string{"add in table findings", "acme"}, 5},
		{"write denied", "PutItem", awstest.Fault{Code: "AccessDeniedException"},
			silo.CodeInternal, []string{"add in table findings", "acme"}, 1},
		{"throttled write", "PutItem", awstest.Fault{Code: "ProvisionedThroughputExceededException"},
			silo.CodeUnavailable, []string{"busy", "add in table findings", "acme"}, 5},
		{"every write loses a race", "PutItem", awstest.Fault{Code: "ConditionalCheckFailedException"},
			silo.CodeUnavailable, []string{`too many concurrent updates of key "n" in table "findings"; retry`}, siloaws.AddAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p, org := newAWS(t, quick)
			d, awsID := counterAccount(t, p)
			if err := d.Put(ctx, "findings", "n", []byte("5")); err != nil {
				t.Fatal(err)
			}
			org.Inject(awsID, tt.op, tt.fault)
			_, err := d.Add(ctx, "findings", "n", 1)
			checkFault(t, err, tt.code, tt.says...)
			if n := org.Faulted(awsID, tt.op); n != tt.faulted {
				t.Errorf("the fault answered %d calls, want %d", n, tt.faulted)
			}
			org.Clear(awsID)
			if v, err := d.Get(ctx, "findings", "n"); err != nil || string(v) != "5" {
				t.Errorf("after the failed Add Get = %q, %v; want 5", v, err)
			}
			if n, err := d.Add(ctx, "findings", "n", 1); err != nil || n != 6 {
				t.Errorf("Add with the fault gone = %d, %v; want 6", n, err)
			}
		})
	}
}

// TestAddRefusalSaysWhy: the refusals a guest sees name the key and the
// table and say what is wrong, with none of AWS's text.
func TestAddRefusalSaysWhy(t *testing.T) {
	ctx := context.Background()
	p, _ := newAWS(t, quick)
	d, _ := counterAccount(t, p)
	tests := []struct {
		value string
		delta int64
		says  string
	}{
		{"high", 1, `the value of key "n" in table "findings" is not a base-10 integer`},
		{"", 1, `the value of key "n" in table "findings" is not a base-10 integer`},
		{"9223372036854775807", 1, `adding 1 to 9223372036854775807, the value of key "n" in table "findings", would overflow a 64-bit integer`},
	}
	for _, tt := range tests {
		if err := d.Put(ctx, "findings", "n", []byte(tt.value)); err != nil {
			t.Fatal(err)
		}
		_, err := d.Add(ctx, "findings", "n", tt.delta)
		checkFault(t, err, silo.CodeInvalid, tt.says)
	}
}
