package awstest_test

import (
	"context"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// TestProcessesEndWithTheTest starts an organization with one member in a
// subtest and checks that its kumo processes run during the subtest and
// are gone after it.
func TestProcessesEndWithTheTest(t *testing.T) {
	var pids []int
	t.Run("org", func(t *testing.T) {
		ctx := context.Background()
		org := awstest.NewOrg(t)
		c := organizations.NewFromConfig(org.Config(), func(o *organizations.Options) { o.BaseEndpoint = aws.String(org.Endpoint("")) })
		out, err := c.CreateAccount(ctx, &organizations.CreateAccountInput{AccountName: aws.String("m"), Email: aws.String("m@example.com")})
		if err != nil {
			t.Fatal(err)
		}
		st, err := c.DescribeCreateAccountStatus(ctx, &organizations.DescribeCreateAccountStatusInput{CreateAccountRequestId: out.CreateAccountStatus.Id})
		if err != nil {
			t.Fatal(err)
		}
		org.Endpoint(*st.CreateAccountStatus.AccountId)
		pids = org.PIDs()
		if len(pids) != 2 {
			t.Fatalf("got %d kumo processes, want 2 (management and one member)", len(pids))
		}
		// Control: they run now.
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); err != nil {
				t.Errorf("kumo %d is not running during the test: %v", pid, err)
			}
		}
	})
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("kumo %d still runs after its test ended", pid)
		}
	}
}
