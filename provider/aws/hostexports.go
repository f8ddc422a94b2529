package aws

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// productionData is production's data plane as a function in another
// account reaches it to read exports: with the function's own credentials
// (its execution role, whose policy names each export it reads by ARN), a
// table by its ARN in production's account and a bucket by its global
// name, so the request goes to production's resource and production's
// resource policy (ExportPolicy) decides. It is used only through the
// decision point's export reads, which never write.
//
// On the emulator (ProductionEndpoint set) each account is its own
// process, which does not resolve a table ARN: the requests go to
// production's process, by the table's name.
func productionData(hc HostConfig, cfg aws.Config) *data {
	d := &data{id: silo.ProductionID, awsID: hc.Production, own: hostMember(hc.Production, hc.ProductionEndpoint, cfg)}
	if hc.ProductionEndpoint == "" {
		d.tablePrefix = "arn:aws:dynamodb:" + cfg.Region + ":" + hc.Production + ":table/"
	}
	return d
}

// Production returns production's data plane for the function's export
// reads (see productionData), nil if the function reads no export.
func (h *Host) Production() provider.Data {
	if h.prod == nil {
		return nil
	}
	return h.prod
}

// exportEnv adds to a function's environment what its host needs to read
// the production exports it names: production's AWS account ID
// (SILO_PRODUCTION_AWS_ACCOUNT), each export's spec by name (SILO_EXPORTS,
// JSON) and, on the emulator, production's endpoint
// (SILO_PRODUCTION_AWS_ENDPOINT).
func (p *Provider) exportEnv(ctx context.Context, id silo.AccountID, names []string, env map[string]string) error {
	refs, err := p.exportRefs(ctx, id, names)
	if err != nil || len(refs) == 0 {
		return err
	}
	specs := map[string]silo.ExportSpec{}
	prod := ""
	for name, ref := range refs {
		specs[name], prod = ref.Spec, ref.Account
	}
	b, _ := json.Marshal(specs)
	env["SILO_PRODUCTION_AWS_ACCOUNT"], env["SILO_EXPORTS"] = prod, string(b)
	if p.cfg.Endpoint != nil {
		env["SILO_PRODUCTION_AWS_ENDPOINT"] = p.cfg.Endpoint(prod)
	}
	return nil
}
