package awstest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
)

// memberFront stands before a member account's kumo. kumo v0.33.1 does not
// serve DynamoDB resource policies (PutResourcePolicy, GetResourcePolicy,
// DeleteResourcePolicy); the front keeps them per table ARN, as the AWS
// documentation describes the calls, without evaluating them, and drops a
// table's policy when the table is deleted. Everything else goes to kumo
// unchanged.
type memberFront struct {
	url  string
	kumo *process

	mu       sync.Mutex
	policies map[string]string // table ARN → policy document
	faults   *faults
}

const ddbTarget = "DynamoDB_20120810."

func newMemberFront(t T, kumo *process) *memberFront {
	f := &memberFront{kumo: kumo, policies: map[string]string{}, faults: newFaults()}
	f.url = serveOn(t, "127.0.0.1:0", f.serve)
	return f
}

func (f *memberFront) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if f.faults.answer(w, r, body) {
		return
	}
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), ddbTarget)
	var in struct{ ResourceArn, Policy, TableName string }
	json.Unmarshal(body, &in)
	switch op {
	case "PutResourcePolicy", "GetResourcePolicy", "DeleteResourcePolicy":
	case "DeleteTable":
		// A table's resource policy goes with the table.
		f.mu.Lock()
		for arn := range f.policies {
			if strings.HasSuffix(arn, ":table/"+in.TableName) {
				delete(f.policies, arn)
			}
		}
		f.mu.Unlock()
		(&front{kumo: f.kumo}).forward(w, r, body, nil)
		return
	default:
		(&front{kumo: f.kumo}).forward(w, r, body, nil)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	doc, ok := f.policies[in.ResourceArn]
	switch op {
	case "PutResourcePolicy":
		f.policies[in.ResourceArn] = in.Policy
		reply(w, map[string]string{"RevisionId": "1"})
	case "GetResourcePolicy":
		if !ok {
			ddbError(w, "PolicyNotFoundException", "no resource policy on "+in.ResourceArn)
			return
		}
		reply(w, map[string]string{"Policy": doc, "RevisionId": "1"})
	case "DeleteResourcePolicy":
		if !ok {
			ddbError(w, "PolicyNotFoundException", "no resource policy on "+in.ResourceArn)
			return
		}
		delete(f.policies, in.ResourceArn)
		reply(w, map[string]string{"RevisionId": "1"})
	}
}

func ddbError(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.dynamodb.v20120810#" + code, "message": msg})
}
