package apikey

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
)

func TestNewParseCheck(t *testing.T) {
	plain, k, err := New("acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, "sk_acme_") || !strings.HasPrefix(plain, k.ID+"_") {
		t.Fatalf("got key %q with ID %q, want sk_acme_<id>_<secret>", plain, k.ID)
	}
	if k.Account != "acme" || len(k.Hash) != 32 || k.Created.IsZero() {
		t.Fatalf("got record %+v", k)
	}
	if strings.Contains(string(k.Hash), plain[len(k.ID)+1:]) {
		t.Fatal("record holds the secret")
	}
	id, err := Parse(plain)
	if err != nil {
		t.Fatal(err)
	}
	if id != k.ID {
		t.Fatalf("got ID %q, want %q", id, k.ID)
	}
	now := time.Now()
	if err := Check(k, plain, now); err != nil {
		t.Fatalf("control: got %v, want the issued key accepted", err)
	}

	// Every single-character change of the secret is rejected.
	for i := len(k.ID) + 1; i < len(plain); i++ {
		b := []byte(plain)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		if err := Check(k, string(b), now); silo.ErrorCode(err) != silo.CodeUnauthenticated {
			t.Fatalf("secret changed at %d: got %v, want unauthenticated", i, err)
		}
	}

	// A key is bound to its record: another key of the same account fails.
	plain2, k2, err := New("acme")
	if err != nil {
		t.Fatal(err)
	}
	if plain2 == plain || k2.ID == k.ID {
		t.Fatal("two keys are equal")
	}
	if err := Check(k, plain2, now); silo.ErrorCode(err) != silo.CodeUnauthenticated {
		t.Fatalf("other key: got %v, want unauthenticated", err)
	}
	if err := Check(k2, plain2, now); err != nil {
		t.Fatalf("control: got %v", err)
	}
}

func TestCheckRevoked(t *testing.T) {
	plain, k, err := New("acme")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	k.Revoked = &at
	forged := plain[:len(plain)-4] + "aaaa"
	tests := []struct {
		name    string
		key     string
		now     time.Time
		want    silo.Code
		revoked bool // ErrRevoked in the chain
	}{
		{"before revocation", plain, at.Add(-time.Second), "", false},
		{"at revocation", plain, at, silo.CodeUnauthenticated, true},
		{"after revocation", plain, at.Add(time.Hour), silo.CodeUnauthenticated, true},
		{"wrong secret after revocation", forged, at.Add(time.Hour), silo.CodeUnauthenticated, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(k, tt.key, tt.now)
			got := silo.Code("")
			if err != nil {
				got = silo.ErrorCode(err)
			}
			if got != tt.want || errors.Is(err, ErrRevoked) != tt.revoked {
				t.Fatalf("got %q (%v), ErrRevoked %v; want %q, ErrRevoked %v", got, err, errors.Is(err, ErrRevoked), tt.want, tt.revoked)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	for _, a := range []silo.AccountID{"", "production", "Acme", "a_b", "-x"} {
		if _, _, err := New(a); silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("New(%q): got %v, want invalid", a, err)
		}
	}
	if _, _, err := New("dev-alice"); err != nil {
		t.Errorf("control New(dev-alice): %v", err)
	}
}

func TestParse(t *testing.T) {
	good, k, err := New("a")
	if err != nil {
		t.Fatal(err)
	}
	sec := good[len(k.ID)+1:]
	kid := k.ID[len("sk_a_"):]
	tests := []struct {
		name, in, want string
	}{
		{"issued", good, k.ID},
		{"long account", "sk_" + strings.Repeat("a", 63) + "_" + kid + "_" + sec, "sk_" + strings.Repeat("a", 63) + "_" + kid},
		{"hyphen account", "sk_dev-al_" + kid + "_" + sec, "sk_dev-al_" + kid},
		{"empty", "", ""},
		{"no prefix", good[3:], ""},
		{"upper prefix", "SK_" + good[3:], ""},
		{"empty account", "sk__" + kid + "_" + sec, ""},
		{"account too long", "sk_" + strings.Repeat("a", 64) + "_" + kid + "_" + sec, ""},
		{"upper account", "sk_A_" + kid + "_" + sec, ""},
		{"underscore account", "sk_a_b_" + kid + "_" + sec, ""},
		{"short secret", good[:len(good)-1], ""},
		{"long secret", good + "a", ""},
		{"upper secret", k.ID + "_" + strings.ToUpper(sec), ""},
		{"non-canonical secret", k.ID + "_" + sec[:len(sec)-1] + "b", ""},
		{"upper key id", "sk_a_" + strings.ToUpper(strings.Repeat("f", 16)) + "_" + sec, ""},
		{"trailing newline", good + "\n", ""},
		{"bearer included", "Bearer " + good, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.want == "" {
				if silo.ErrorCode(err) != silo.CodeUnauthenticated {
					t.Fatalf("got %q, %v, want unauthenticated", got, err)
				}
				if strings.Contains(err.Error(), sec) {
					t.Fatal("error echoes the secret")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("ID (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	good, _, _ := New("acme")
	f.Add(good)
	f.Add("sk_a_0123456789abcdef_" + strings.Repeat("a", 52))
	f.Add("sk___")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			if id != "" {
				t.Fatalf("error with ID %q", id)
			}
			return
		}
		// A parsed key is its ID, '_', and a secret; the ID names a valid account.
		if !strings.HasPrefix(s, id+"_") || len(s)-len(id)-1 != secLen {
			t.Fatalf("ID %q is not the prefix of %q", id, s)
		}
		if raw, err := b32.DecodeString(s[len(id)+1:]); err != nil || len(raw) != secBytes || b32.EncodeToString(raw) != s[len(id)+1:] {
			t.Fatalf("secret of %q is not a canonical 256-bit encoding", s)
		}
		acct := strings.TrimPrefix(id, prefix)
		acct = acct[:len(acct)-idLen-1]
		if _, err := silo.ParseID(acct); err != nil {
			t.Fatalf("ID %q has invalid account: %v", id, err)
		}
	})
}
