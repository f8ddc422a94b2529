package aws

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// A secret is an SSM SecureString parameter of the standard tier (free to
// store), encrypted under the account's data key (KeyId), named
// secretPath and the encoded secret name: outside /silo, so that the
// deployer role, which reads silo's own parameters under /silo, reaches no
// secret value (IAM grants GetParametersByPath on a path to everything
// below it). Parameter values are text and never empty, so a value is
// stored as itself when it is printable text that does not start with
// binaryMark, else as binaryMark and its base64.
//
// Secrets that an earlier version of silo kept in Secrets Manager (named
// legacySecretPrefix and the encoded name) move here on the account's next
// Apply (migrateSecrets).
const (
	secretPath         = "/silo-secret/"
	binaryMark         = provider.SecretBinaryMark
	legacySecretPrefix = "silo/secret/"
)

func secretParam(name string) string { return secretPath + encode(name) }

func legacySecretName(name string) string { return legacySecretPrefix + encode(name) }

// encodeSecret returns the parameter value that stores v.
func encodeSecret(v []byte) string {
	if provider.SecretText(v) && !strings.HasPrefix(string(v), binaryMark) {
		return string(v)
	}
	return binaryMark + base64.StdEncoding.EncodeToString(v)
}

// decodeSecret returns the value a parameter value stores.
func decodeSecret(s string) ([]byte, error) {
	if b64, ok := strings.CutPrefix(s, binaryMark); ok {
		return base64.StdEncoding.DecodeString(b64)
	}
	return []byte(s), nil
}

// secretErr is an AWS error on a secret's parameter with nothing but its
// error code kept: AWS validation messages may quote the value.
func secretErr(err error) error {
	if err == nil {
		return nil
	}
	var se *silo.Error
	if errors.As(err, &se) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	c := &codeOnly{code: apiCodeOr(err)}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		c.fault = ae.ErrorFault()
	}
	return c
}

// codeOnly is an AWS error reduced to its code: it answers apiCode (it is
// a smithy.APIError) but holds no message and wraps nothing, so no
// message of AWS about a secret is ever printed or logged.
type codeOnly struct {
	code  string
	fault smithy.ErrorFault
}

func (e *codeOnly) Error() string                 { return "AWS answered " + e.code }
func (e *codeOnly) ErrorCode() string             { return e.code }
func (e *codeOnly) ErrorMessage() string          { return "" }
func (e *codeOnly) ErrorFault() smithy.ErrorFault { return e.fault }

// putSecret stores v as the secret name: a SecureString parameter under
// the data key keyARN, tagged with the account and the resource.
func (m *member) putSecret(ctx context.Context, id silo.AccountID, name, keyARN string, v []byte) error {
	param := aws.String(secretParam(name))
	_, err := m.ssm.PutParameter(ctx, &ssm.PutParameterInput{
		Name:      param,
		Value:     aws.String(encodeSecret(v)),
		Type:      ssmtypes.ParameterTypeSecureString,
		KeyId:     aws.String(keyARN),
		Overwrite: aws.Bool(true),
		Tier:      ssmtypes.ParameterTierStandard,
	})
	if isCode(err, "ValidationException", "ParameterMaxVersionLimitExceeded") {
		return &silo.Error{Code: silo.CodeInvalid, Message: "AWS refused the value of secret " + clip(name) + " (" + apiCode(err) + "); check its size against the limits in docs/aws.md", Err: secretErr(err)}
	}
	if err != nil {
		return fail(id, "store secret "+name, secretErr(err))
	}
	// PutParameter takes no tags with Overwrite; they are added apart.
	_, err = m.ssm.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{
		ResourceType: ssmtypes.ResourceTypeForTaggingParameter,
		ResourceId:   param,
		Tags: []ssmtypes.Tag{
			{Key: aws.String(tagAccount), Value: aws.String(string(id))},
			{Key: aws.String(tagResource), Value: aws.String(tagValue(silo.Resource{Type: silo.TypeSecret, Name: name}.Key()))},
		},
	})
	if err != nil {
		return fail(id, "tag secret "+name, err)
	}
	if m.sm != nil && !m.noLegacy() {
		// A function still on an execution role of an earlier silo reads
		// the Secrets Manager copy until migrateSecrets deletes it.
		_, err := m.sm.PutSecretValue(ctx, legacyPut(name, v))
		if err != nil && !isCode(err, "ResourceNotFoundException") {
			return fail(id, "store secret "+name+" in its Secrets Manager copy", secretErr(err))
		}
	}
	return nil
}

// Secret returns the secret name, decrypted by SSM with the account's data
// key. The data plane's handle (not the Lambda host's) falls back to the
// Secrets Manager copy an earlier silo made, until the next Apply moves it.
//
// # Errors
//
// CodeNotFound if the secret has no value (undeclared, or never put).
func (d *data) Secret(ctx context.Context, name string) ([]byte, error) {
	if validateName(silo.TypeSecret, name) != nil {
		return nil, silo.Errorf(silo.CodeNotFound, "secret %q has no value in account %s", clip(name), d.id)
	}
	m := d.m()
	out, err := m.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(secretParam(name)), WithDecryption: aws.Bool(true)}, ssmRetry(ctx))
	if isCode(err, "ParameterNotFound") {
		if m.sm != nil && !m.noLegacy() {
			return m.legacySecret(ctx, d.id, name)
		}
		return nil, silo.Errorf(silo.CodeNotFound, "secret %q has no value in account %s; set it with silo secret set %s %s", clip(name), d.id, d.id, clip(name))
	}
	if err != nil {
		return nil, fail(d.id, "read secret "+name, secretErr(err))
	}
	v, err := decodeSecret(aws.ToString(out.Parameter.Value))
	if err != nil {
		return nil, fail(d.id, "decode secret "+name, errors.New("the stored value is not valid base64"))
	}
	return v, nil
}

// legacySecret reads the Secrets Manager secret an earlier silo stored as
// name.
func (m *member) legacySecret(ctx context.Context, id silo.AccountID, name string) ([]byte, error) {
	out, err := m.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(legacySecretName(name))})
	if isCode(err, "ResourceNotFoundException") {
		return nil, silo.Errorf(silo.CodeNotFound, "secret %q has no value in account %s; set it with silo secret set %s %s", clip(name), id, id, clip(name))
	}
	if err != nil {
		return nil, fail(id, "read secret "+name+" from Secrets Manager", secretErr(err))
	}
	if out.SecretBinary != nil {
		return out.SecretBinary, nil
	}
	return []byte{}, nil // stored empty, as legacyEmpty
}

// legacyEmpty is the SecretString that stood for an empty value in
// Secrets Manager, which needs a non-empty value; every non-empty value
// was stored as SecretBinary.
const legacyEmpty = "-"

func legacyPut(name string, v []byte) *secretsmanager.PutSecretValueInput {
	in := &secretsmanager.PutSecretValueInput{SecretId: aws.String(legacySecretName(name))}
	if len(v) == 0 {
		in.SecretString = aws.String(legacyEmpty)
	} else {
		in.SecretBinary = v
	}
	return in
}

// noLegacy reports whether this process found the account without
// Secrets Manager secrets of an earlier silo (silo never creates them
// again).
func (m *member) noLegacy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.legacyGone
}

// legacySecrets lists the names (Secrets Manager's) of the secrets an
// earlier silo made in the account.
func (m *member) legacySecrets(ctx context.Context, id silo.AccountID) ([]string, error) {
	var out []string
	pages := secretsmanager.NewListSecretsPaginator(m.sm, &secretsmanager.ListSecretsInput{
		Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{legacySecretPrefix}}},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fail(id, "list the secrets in Secrets Manager", err)
		}
		for _, s := range page.SecretList {
			if name := aws.ToString(s.Name); strings.HasPrefix(name, legacySecretPrefix) {
				out = append(out, name)
			}
		}
	}
	return out, nil
}

// migrateSecrets moves the secrets an earlier silo kept in Secrets Manager
// to SSM: each value is read through the data role (data, the data
// plane's clients: the deployer role reads no secret) and stored as a
// SecureString parameter, unless the parameter exists already (written
// since, so newer). The Secrets Manager secret is then deleted, unless an
// execution role of the account still grants secretsmanager actions: such
// a function runs a Lambda host of the earlier silo, which reads Secrets
// Manager, and keeps its copy (PutSecret updates both) until the function
// is deployed again. Once no such secret is left, this process does not
// look again.
func (p *Provider) migrateSecrets(ctx context.Context, id silo.AccountID, m *member) error {
	if m.noLegacy() {
		return nil
	}
	names, err := m.legacySecrets(ctx, id)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		for _, c := range []*member{m, p.dataMember(m.id)} {
			c.mu.Lock()
			c.legacyGone = true
			c.mu.Unlock()
		}
		return nil
	}
	byName := map[string]string{} // Secrets Manager name → silo name
	recs, err := m.params(ctx, id, recordPath+string(silo.TypeSecret)+"/")
	if err != nil {
		return err
	}
	for _, raw := range recs {
		var rec record
		if err := json.Unmarshal([]byte(raw), &rec); err == nil {
			byName[legacySecretName(rec.Name)] = rec.Name
		}
	}
	oldReaders, err := p.legacyReaders(ctx, id, m)
	if err != nil {
		return err
	}
	var keyARN string
	data := p.dataMember(m.id)
	for _, smName := range names {
		name, declared := byName[smName]
		if declared {
			_, err := m.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(secretParam(name))})
			switch {
			case isCode(err, "ParameterNotFound"):
				v, err := data.legacySecret(ctx, id, name)
				if silo.ErrorCode(err) == silo.CodeNotFound {
					continue // deleted meanwhile
				}
				if err != nil {
					return &silo.Error{Code: silo.ErrorCode(err), Message: "account " + string(id) + " holds secrets of an earlier silo in Secrets Manager, and moving them to SSM needs the data role " + dataRole + ": " + silo.UserMessage(err), Err: err}
				}
				if keyARN == "" {
					if keyARN, err = m.key(ctx, id); err != nil {
						return err
					}
				}
				if err := m.putSecret(ctx, id, name, keyARN, v); err != nil {
					return err
				}
			case err != nil:
				return fail(id, "look for secret "+name+" in SSM", secretErr(err))
			}
			if oldReaders[name] {
				continue
			}
		}
		// Undeclared: its slot was deleted; nothing reads it.
		if _, err := m.deleteLegacySecret(ctx, id, smName); err != nil {
			return err
		}
	}
	return nil
}

// legacyReaders returns the secrets that a function of the account still
// reads through Secrets Manager: those its execution role's grants (as an
// earlier silo wrote them) name with a secretsmanager action.
func (p *Provider) legacyReaders(ctx context.Context, id silo.AccountID, m *member) (map[string]bool, error) {
	recs, err := m.params(ctx, id, recordPath+string(silo.TypeFunction)+"/")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	c := p.iamOf(m)
	for _, raw := range recs {
		var rec record
		var g struct {
			Secrets []string `json:"secrets"`
		}
		if json.Unmarshal([]byte(raw), &rec) != nil || rec.Spec == "" || json.Unmarshal([]byte(rec.Spec), &g) != nil || len(g.Secrets) == 0 {
			continue
		}
		got, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(FunctionRole(rec.Name)), PolicyName: aws.String(grantsPolicy)})
		if isCode(err, "NoSuchEntity") {
			continue
		}
		if err != nil {
			return nil, fail(id, "read the grants of function "+rec.Name, err)
		}
		doc, err := url.QueryUnescape(aws.ToString(got.PolicyDocument))
		if err != nil {
			doc = aws.ToString(got.PolicyDocument)
		}
		if strings.Contains(doc, "secretsmanager:") {
			for _, s := range g.Secrets {
				out[s] = true
			}
		}
	}
	return out, nil
}

// deleteLegacySecret deletes the Secrets Manager secret smName at once
// (no recovery window) and reports whether it was there; a missing one is
// no error.
func (m *member) deleteLegacySecret(ctx context.Context, id silo.AccountID, smName string) (bool, error) {
	_, err := m.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(smName), ForceDeleteWithoutRecovery: aws.Bool(true)})
	if isCode(err, "ResourceNotFoundException") {
		return false, nil
	}
	if err != nil {
		return false, fail(id, "delete a secret in Secrets Manager", err)
	}
	return true, nil
}

// deleteSecret deletes the value of secret name: its parameter and, while
// the account may hold them, its Secrets Manager copy of an earlier silo
// (which the data plane reads when the parameter is missing). It reports
// whether either was there; a missing one is no error.
func (m *member) deleteSecret(ctx context.Context, id silo.AccountID, name string) (bool, error) {
	_, err := m.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(secretParam(name))})
	found := err == nil
	if err != nil && !isCode(err, "ParameterNotFound") {
		return false, fail(id, "delete secret "+name, secretErr(err))
	}
	if m.sm != nil && !m.noLegacy() {
		legacy, err := m.deleteLegacySecret(ctx, id, legacySecretName(name))
		if err != nil {
			return found, err
		}
		found = found || legacy
	}
	return found, nil
}

// DeleteSecret deletes the value of the secret name from the account
// (deleteSecret): its functions then read it as never set. It reports
// whether there was a value. The name need not be declared.
//
// # Errors
//
// CodeInvalid for a malformed ID or name; CodeNotFound if the account
// does not exist.
func (p *Provider) DeleteSecret(ctx context.Context, id silo.AccountID, name string) (bool, error) {
	if err := parseID(id); err != nil {
		return false, err
	}
	if err := validateName(silo.TypeSecret, name); err != nil {
		return false, err
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return false, err
	}
	if err := p.ensureRolesCurrent(ctx, id, awsID); err != nil {
		return false, err
	}
	return p.member(awsID).deleteSecret(ctx, id, name)
}

// SecretNames returns the names of the account's secrets that hold a
// value, sorted: those of its secret parameters (from their metadata,
// DescribeParameters, which returns no value) and of the Secrets Manager
// copies of an earlier silo not yet moved (ListSecrets, names only). A
// name too long to be kept in a parameter's name (encode) is listed as
// its hashed form.
//
// # Errors
//
// CodeInvalid for a malformed ID; CodeNotFound if the account does not
// exist.
func (p *Provider) SecretNames(ctx context.Context, id silo.AccountID) ([]string, error) {
	if err := parseID(id); err != nil {
		return nil, err
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return nil, err
	}
	m := p.member(awsID)
	params, err := m.secretParams(ctx, id)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, param := range params {
		names = append(names, decode(strings.TrimPrefix(param, secretPath)))
	}
	if m.sm != nil && !m.noLegacy() {
		legacy, err := m.legacySecrets(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, smName := range legacy {
			names = append(names, decode(strings.TrimPrefix(smName, legacySecretPrefix)))
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// secretParams returns the names of the account's secret parameters,
// from their metadata (DescribeParameters returns no value).
func (m *member) secretParams(ctx context.Context, id silo.AccountID) ([]string, error) {
	var out []string
	pages := ssm.NewDescribeParametersPaginator(m.ssm, &ssm.DescribeParametersInput{
		ParameterFilters: []ssmtypes.ParameterStringFilter{{Key: aws.String("Name"), Option: aws.String("BeginsWith"), Values: []string{secretPath}}},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fail(id, "list the secret parameters", err)
		}
		for _, p := range page.Parameters {
			if name := aws.ToString(p.Name); strings.HasPrefix(name, secretPath) {
				out = append(out, name)
			}
		}
	}
	return out, nil
}
