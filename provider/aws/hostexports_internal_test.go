package aws

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// TestProductionTablesByARN: on AWS the host names production's exported
// table by its ARN in production's account, so the request reaches that
// account's table under its resource policy; on the emulator, whose
// accounts are separate processes that do not resolve ARNs, by its name.
func TestProductionTablesByARN(t *testing.T) {
	cfg := aws.Config{Region: "eu-west-1"}
	for _, c := range []struct {
		name     string
		hc       HostConfig
		want     string
		wantAcct string
	}{
		{"AWS", HostConfig{Production: "111122223333"}, "arn:aws:dynamodb:eu-west-1:111122223333:table/silo.threat-intel", "111122223333"},
		{"emulator", HostConfig{Production: "111122223333", ProductionEndpoint: "http://127.0.0.1:4566"}, "silo.threat-intel", "111122223333"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := productionData(c.hc, cfg)
			if got := d.table("threat-intel"); got != c.want {
				t.Errorf("table name %q, want %q", got, c.want)
			}
			if d.awsID != c.wantAcct || d.id != "production" {
				t.Errorf("production data bound to %s/%s, want production/%s", d.id, d.awsID, c.wantAcct)
			}
		})
	}
}
