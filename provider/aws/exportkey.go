package aws

import (
	"context"
	"encoding/json"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	silo "github.com/silo-run/silo"
)

// exportDecryptSid names the statement of production's key policy that
// lets the reader OUs decrypt exported data.
const exportDecryptSid = "SiloExportDecrypt"

// ExportKeyStatement is the statement production's data key policy holds
// while production exports a table or bucket: kms:Decrypt to the
// organization's principals in the reader OUs (paths), only through S3 and
// DynamoDB (kms:ViaService), whose own resource policies decide which
// objects and items each may read.
func ExportKeyStatement(region, orgID string, paths []string) Statement {
	return Statement{
		Sid: exportDecryptSid, Effect: "Allow", Principal: map[string]string{"AWS": "*"},
		Action: []string{"kms:Decrypt"}, Resource: []string{"*"},
		Condition: map[string]map[string][]string{
			"StringEquals":           {"aws:PrincipalOrgID": {orgID}, "kms:ViaService": {"dynamodb." + region + ".amazonaws.com", "s3." + region + ".amazonaws.com"}},
			"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": paths},
		},
	}
}

// shareKey adds ExportKeyStatement to the policy of the account's data key
// if on, and removes it if not; the rest of the policy is kept as it is.
func (p *Provider) shareKey(ctx context.Context, id silo.AccountID, m *member, on bool) error {
	keyARN, err := m.key(ctx, id)
	if err != nil {
		return err
	}
	got, err := m.kms.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(keyARN), PolicyName: aws.String("default")})
	if err != nil {
		return fail(id, "read the policy of the data key", err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(got.Policy)), &doc); err != nil {
		return fail(id, "read the policy of the data key", err)
	}
	var sts []any
	switch s := doc["Statement"].(type) {
	case []any:
		sts = s
	case map[string]any:
		sts = []any{s}
	}
	kept := make([]any, 0, len(sts)+1)
	for _, st := range sts {
		if m, ok := st.(map[string]any); ok && m["Sid"] == exportDecryptSid {
			continue
		}
		kept = append(kept, st)
	}
	if on {
		orgID, paths, err := p.readerPaths(ctx, id)
		if err != nil {
			return err
		}
		var st any
		b, _ := json.Marshal(ExportKeyStatement(p.cfg.AWS.Region, orgID, paths))
		json.Unmarshal(b, &st)
		kept = append(kept, st)
	}
	if reflect.DeepEqual(kept, sts) {
		return nil
	}
	doc["Statement"] = kept
	b, _ := json.Marshal(doc)
	_, err = m.kms.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(keyARN), PolicyName: aws.String("default"), Policy: aws.String(string(b))})
	return fail(id, "let the tenants decrypt production's exports", err)
}

// exportsRemain reports whether an export of the account other than name
// shares a table or bucket.
func (m *member) exportsRemain(ctx context.Context, id silo.AccountID, name string) (bool, error) {
	recs, err := m.params(ctx, id, recordPath+string(silo.TypeExport)+"/")
	if err != nil {
		return false, err
	}
	for _, raw := range recs {
		var rec record
		var es silo.ExportSpec
		if json.Unmarshal([]byte(raw), &rec) != nil || json.Unmarshal([]byte(rec.Spec), &es) != nil {
			return false, fail(id, "read the exports", errUnreadable)
		}
		if rec.Name != name && (es.Table != "" || es.Bucket != "") {
			return true, nil
		}
	}
	return false, nil
}
