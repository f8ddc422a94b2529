package awstest

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// On AWS every account is reached at one endpoint per service, and the
// credentials a call is signed with say which account it acts in. kumo
// serves one account per process, so an organization offered to another
// process (Serve) routes at its management front: an AssumeRole into a
// role of a member account passes through the front, which notes the
// access key ID kumo returned, and a later call signed with that key is
// forwarded to the member account's kumo (started on first use). Every
// other call goes to the management account's kumo, as before. Tests that
// give the provider an endpoint per account (NewOrg, Org.Endpoint) do not
// need this and do not get it.

// roleAccount matches the account of the RoleArn of an STS AssumeRole call (query
// protocol: a form body).
var roleAccount = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(\d{12}):role/`)

// accessKeyIn matches the AccessKeyId of an AssumeRole answer.
var accessKeyIn = regexp.MustCompile(`<AccessKeyId>([^<]+)</AccessKeyId>`)

// routed answers r if it belongs to a member account: a call signed with a
// key an AssumeRole into that account returned goes to its kumo, and an
// AssumeRole into one of its roles is answered by the management kumo with
// its key noted. It reports whether it answered.
func (f *front) routed(w http.ResponseWriter, r *http.Request, body []byte) bool {
	if f.member == nil {
		return false
	}
	if key := accessKeyOf(r); key != "" {
		f.mu.Lock()
		account, ok := f.keys[key]
		f.mu.Unlock()
		if ok {
			proxy(w, r, body, f.member(account), nil)
			return true
		}
	}
	account := f.assumedAccount(r, body)
	if account == "" {
		return false
	}
	proxy(w, r, body, f.kumo.url, func(out []byte) []byte {
		if m := accessKeyIn.FindSubmatch(out); m != nil {
			f.mu.Lock()
			f.keys[string(m[1])] = account
			f.mu.Unlock()
			f.save()
		}
		return out
	})
	return true
}

// assumedAccount returns the member account whose role an STS AssumeRole
// call r asks for, or "" if r is no such call (or the role is in an
// account the organization did not create: the management account's own).
func (f *front) assumedAccount(r *http.Request, body []byte) string {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return ""
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("Action") != "AssumeRole" {
		return ""
	}
	m := roleAccount.FindStringSubmatch(form.Get("RoleArn"))
	if m == nil || !f.created(m[1]) {
		return ""
	}
	return m[1]
}

// accessKeyOf returns the access key ID r is signed with (SigV4, in the
// Authorization header or a presigned URL's X-Amz-Credential), or "".
func accessKeyOf(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		_, after, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return ""
		}
		cred = after
	}
	key, _, _ := strings.Cut(cred, "/")
	return key
}

// proxy sends r (with its body, already read) to the same path at base and
// writes the answer to w, its body passed through edit if edit is set and
// the answer is 200.
func proxy(w http.ResponseWriter, r *http.Request, body []byte, base string, edit func([]byte) []byte) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.Host = r.Host // execute-api is virtual-hosted
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if edit != nil && resp.StatusCode == http.StatusOK {
		out = edit(out)
	}
	for k, vs := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}
