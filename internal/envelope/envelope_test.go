package envelope

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
)

func testMaster(t testing.TB) *Master {
	t.Helper()
	key := make([]byte, KeySize)
	rand.Read(key)
	m, err := NewMaster(key)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newKey(t testing.TB, m *Master, acct silo.AccountID) (*DataKey, []byte) {
	t.Helper()
	dk, wrapped, err := m.NewDataKey(acct)
	if err != nil {
		t.Fatal(err)
	}
	return dk, wrapped
}

func TestRoundTrip(t *testing.T) {
	m := testMaster(t)
	dk, wrapped := newKey(t, m, "acme")
	for _, pt := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("secret"), 10000)} {
		env, err := dk.Seal("db-password", pt)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(env), len(pt)+Overhead; got != want {
			t.Errorf("len(envelope) = %d, want %d", got, want)
		}
		// Through a freshly unwrapped key, as after a restart.
		dk2, err := m.Unwrap("acme", wrapped)
		if err != nil {
			t.Fatalf("Unwrap: %v", err)
		}
		got, err := dk2.Open("db-password", env)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("Open = %q, want %q", got, pt)
		}
		if dk2.Fingerprint() != dk.Fingerprint() {
			t.Errorf("fingerprint changed after unwrap: %s, want %s", dk2.Fingerprint(), dk.Fingerprint())
		}
	}
}

// mutations returns every single-bit flip of b plus truncations and an
// extension.
func mutations(b []byte) map[string][]byte {
	out := map[string][]byte{}
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			c := bytes.Clone(b)
			c[i] ^= 1 << bit
			out["flip byte "+itoa(i)+" bit "+itoa(bit)] = c
		}
		out["truncate to "+itoa(i)] = bytes.Clone(b[:i])
	}
	out["extend"] = append(bytes.Clone(b), 0)
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestEveryBitFlipRejected(t *testing.T) {
	m := testMaster(t)
	dk, wrapped := newKey(t, m, "acme")
	env, err := dk.Seal("s", []byte("the canary value"))
	if err != nil {
		t.Fatal(err)
	}
	// Controls: the originals open.
	if _, err := dk.Open("s", env); err != nil {
		t.Fatalf("control: unmodified envelope rejected: %v", err)
	}
	if _, err := m.Unwrap("acme", wrapped); err != nil {
		t.Fatalf("control: unmodified wrapped key rejected: %v", err)
	}
	for name, bad := range mutations(env) {
		if pt, err := dk.Open("s", bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("envelope %s: Open = %q, %v; want ErrDecrypt", name, pt, err)
		}
	}
	for name, bad := range mutations(wrapped) {
		if _, err := m.Unwrap("acme", bad); !errors.Is(err, ErrDecrypt) {
			t.Errorf("wrapped key %s: Unwrap err = %v; want ErrDecrypt", name, err)
		}
	}
}

func TestWrongAccountLabelOrKeyRejected(t *testing.T) {
	m := testMaster(t)
	a, wrappedA := newKey(t, m, "acme")
	b, _ := newKey(t, m, "globex")
	a2, _ := newKey(t, m, "acme") // a second key for the same account
	env, err := a.Seal("token", []byte("A's secret"))
	if err != nil {
		t.Fatal(err)
	}
	// A key with A's raw material but bound to account B: only the account
	// ID in the additional data differs.
	shifted := &DataKey{account: "globex", aead: a.aead}

	tests := []struct {
		name   string
		open   func() ([]byte, error)
		wantOK bool
	}{
		{"control: A's key, A's account, same label", func() ([]byte, error) { return a.Open("token", env) }, true},
		{"B's key", func() ([]byte, error) { return b.Open("token", env) }, false},
		{"A's key material, B's account ID", func() ([]byte, error) { return shifted.Open("token", env) }, false},
		{"another data key of A", func() ([]byte, error) { return a2.Open("token", env) }, false},
		{"other label", func() ([]byte, error) { return a.Open("other", env) }, false},
		{"wrapped key as envelope", func() ([]byte, error) { return a.Open("token", wrappedA) }, false},
		{"unwrap A's key as B", func() ([]byte, error) { _, err := m.Unwrap("globex", wrappedA); return nil, err }, false},
		{"unwrap A's key under another master", func() ([]byte, error) { _, err := testMaster(t).Unwrap("acme", wrappedA); return nil, err }, false},
		{"control: unwrap A's key as A", func() ([]byte, error) { _, err := m.Unwrap("acme", wrappedA); return nil, err }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.open()
			if tt.wantOK && err != nil {
				t.Errorf("got %v, want success", err)
			}
			if !tt.wantOK && !errors.Is(err, ErrDecrypt) {
				t.Errorf("got %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestNoncesNeverRepeat(t *testing.T) {
	m := testMaster(t)
	dk, _ := newKey(t, m, "acme")
	const n = 50000
	seen := make(map[[NonceSize]byte]bool, n)
	for i := 0; i < n; i++ {
		env, err := dk.Seal("s", []byte("same plaintext"))
		if err != nil {
			t.Fatal(err)
		}
		var nonce [NonceSize]byte
		copy(nonce[:], env[1:])
		if seen[nonce] {
			t.Fatalf("nonce %x repeated after %d encryptions", nonce, i)
		}
		seen[nonce] = true
	}
	if len(seen) != n { // control: the harness really collected n nonces
		t.Fatalf("collected %d nonces, want %d", len(seen), n)
	}
}

func TestFingerprintIsNotKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, KeySize)
	m, err := NewMaster(key)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.Fingerprint(), "abab") {
		t.Errorf("master fingerprint %s looks like key material", m.Fingerprint())
	}
	if got := len(m.Fingerprint()); got != 2*fpBytes {
		t.Errorf("len(fingerprint) = %d, want %d", got, 2*fpBytes)
	}
	_, w1, _ := m.NewDataKey("acme")
	_, w2, _ := m.NewDataKey("acme")
	if Fingerprint(w1) == Fingerprint(w2) {
		t.Errorf("two data keys share fingerprint %s", Fingerprint(w1))
	}
}

func TestMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "master.key")
	m1, err := LoadOrCreateMaster(path)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %04o, want 0600", got)
	}
	if st.Size() != KeySize {
		t.Errorf("size = %d, want %d", st.Size(), KeySize)
	}
	m2, err := LoadOrCreateMaster(path)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if diff := cmp.Diff(m1.Fingerprint(), m2.Fingerprint()); diff != "" {
		t.Errorf("reloaded key differs (-first +second):\n%s", diff)
	}
	_, wrapped, _ := m1.NewDataKey("acme")
	if _, err := m2.Unwrap("acme", wrapped); err != nil {
		t.Errorf("reloaded master cannot unwrap: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("key dir holds %d entries, want 1 (no temp files left)", len(ents))
	}

	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateMaster(path)
		if silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: got %v, want CodeFailedCheck saying chmod 600", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	if _, err := LoadOrCreateMaster(path); err != nil {
		t.Errorf("control: mode 0600 refused: %v", err)
	}

	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateMaster(link); silo.ErrorCode(err) != silo.CodeFailedCheck {
		t.Errorf("symlinked key: got %v, want CodeFailedCheck", err)
	}

	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("short"), 0o600)
	if _, err := LoadOrCreateMaster(short); silo.ErrorCode(err) != silo.CodeFailedCheck {
		t.Errorf("short key: got %v, want CodeFailedCheck", err)
	}
}

func FuzzOpen(f *testing.F) {
	m := testMaster(f)
	dk, wrapped := newKey(f, m, "acme")
	env, _ := dk.Seal("s", []byte("seed"))
	f.Add(env)
	f.Add(wrapped)
	f.Add([]byte{})
	f.Add([]byte{version})
	f.Fuzz(func(t *testing.T, b []byte) {
		if pt, err := dk.Open("s", b); err == nil && !bytes.Equal(b, env) {
			t.Fatalf("arbitrary bytes opened to %q", pt)
		}
		if _, err := m.Unwrap("acme", b); err == nil && !bytes.Equal(b, wrapped) {
			t.Fatalf("arbitrary bytes unwrapped")
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	m := testMaster(b)
	dk, _ := newKey(b, m, "acme")
	pt := make([]byte, 256)
	for b.Loop() {
		dk.Seal("s", pt)
	}
}

// TestMasterRotationFile: AddMaster puts a new key first and keeps the old
// one; Rewrap moves a data key to the new master; DropPreviousMasters leaves
// only the new key, after which the old wrapped form no longer opens.
func TestMasterRotationFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	old, err := LoadOrCreateMaster(path)
	if err != nil {
		t.Fatal(err)
	}
	dk, wrapped := newKey(t, old, "acme")
	env, _ := dk.Seal("s", []byte("v"))

	ms, err := AddMaster(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1].Fingerprint() != old.Fingerprint() || ms[0].Fingerprint() == old.Fingerprint() {
		t.Fatalf("after AddMaster: %d keys, want the new one then the old one", len(ms))
	}
	if cur, _ := LoadOrCreateMaster(path); cur.Fingerprint() != ms[0].Fingerprint() {
		t.Errorf("LoadOrCreateMaster returns %s, want the new current key %s", cur.Fingerprint(), ms[0].Fingerprint())
	}
	rewrapped, err := ms[1].Rewrap("acme", wrapped, ms[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms[1].Rewrap("globex", wrapped, ms[0]); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Rewrap as another account: %v, want ErrDecrypt", err)
	}
	dk2, err := ms[0].Unwrap("acme", rewrapped)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := dk2.Open("s", env); err != nil || string(v) != "v" {
		t.Errorf("rewrapped key opens %q, %v; want the value sealed before", v, err)
	}
	if err := DropPreviousMasters(path); err != nil {
		t.Fatal(err)
	}
	ms2, err := LoadOrCreateMasters(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms2) != 1 || ms2[0].Fingerprint() != ms[0].Fingerprint() {
		t.Fatalf("after DropPreviousMasters: %d keys, want only the new one", len(ms2))
	}
	if _, err := ms2[0].Unwrap("acme", wrapped); !errors.Is(err, ErrDecrypt) {
		t.Errorf("the old wrapped key opens under the new master: %v", err)
	}
	if _, err := ms2[0].Unwrap("acme", rewrapped); err != nil {
		t.Errorf("control: the rewrapped key does not open: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("key dir holds %d entries, want 1 (no temp files left)", len(ents))
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode after rotation = %04o, want 0600", st.Mode().Perm())
	}
}

// BenchmarkSealerOpen is the AES-GCM cost a table read pays for a 256-byte
// value (provider/local BenchmarkDataGet compares the whole read).
func BenchmarkSealerOpen(b *testing.B) {
	s, err := Derive(NewStorageKey(), "acme", PurposeTable)
	if err != nil {
		b.Fatal(err)
	}
	ad := []byte("table\x00findings\x00k")
	env, _ := s.Seal(make([]byte, 256), ad)
	for b.Loop() {
		if _, err := s.Open(env, ad); err != nil {
			b.Fatal(err)
		}
	}
}
