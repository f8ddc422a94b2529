package isolation

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	silo "github.com/silo-run/silo"
)

func validID(a silo.AccountID) bool {
	_, err := silo.ParseID(string(a))
	return err == nil
}

// simpleName reports whether name is a plain resource name: 1–255 bytes of
// letters, digits, '.', '_' and '-', starting with a letter or digit, with no
// "..". Such a name cannot name anything outside its account.
func simpleName(name string) bool {
	if name == "" || len(name) > 255 || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// resolve maps a grant name, relative to owner, to the account and name it
// could reach, and says what is wrong with it ("" for a plain name). Names
// are never patterns; a name that is not plain is read in the most
// dangerous way it could be meant: a wildcard reaches every account, a path
// reaches the account it names.
func resolve(owner silo.AccountID, name string) (silo.AccountID, string, string) {
	if simpleName(name) {
		return owner, name, ""
	}
	if name == "" {
		return owner, name, "empty"
	}
	if strings.ContainsAny(name, "*?[") {
		return AnyAccount, name, "a wildcard; grants name exact resources, and the verifier reads a wildcard as every resource of every account"
	}
	s := name
	for range 3 {
		u, err := url.PathUnescape(s)
		if err != nil || u == s {
			break
		}
		s = u
	}
	s = strings.NewReplacer("\\", "/", ":", "/").Replace(s)
	var parts []string
	for _, p := range strings.Split(s, "/") {
		p = strings.TrimSpace(p)
		if p != "" && p != "." && p != ".." {
			parts = append(parts, p)
		}
	}
	if len(parts) >= 2 && validID(silo.AccountID(parts[len(parts)-2])) {
		return silo.AccountID(parts[len(parts)-2]), parts[len(parts)-1], fmt.Sprintf("a path naming account %s", parts[len(parts)-2])
	}
	return AnyAccount, name, "not a plain name (letters, digits, '.', '_', '-'); the verifier cannot tell which account it reaches"
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
