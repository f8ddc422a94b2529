package aws_test

import (
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/provider/providertest"
)

// newAWS returns a provider on a fresh emulated organization.
func newAWS(t testing.TB) (*siloaws.Provider, *awstest.Org) {
	t.Helper()
	org := awstest.NewOrg(t)
	p, err := siloaws.New(siloaws.Config{
		AWS:          org.Config(),
		Email:        "aws@example.com",
		Endpoint:     org.Endpoint,
		PollInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, org
}

func TestConformance(t *testing.T) {
	providertest.Run(t, func(t *testing.T) provider.Provider {
		p, _ := newAWS(t)
		return p
	})
}

var _ = silo.ProductionID
