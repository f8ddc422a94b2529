package local

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// overwrite overwrites the file at path in place with random bytes, as
// writeRing does to the file it replaced.
func overwrite(t *testing.T, _ *Provider, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, st.Size())
	rand.Read(junk)
	if _, err := f.WriteAt(junk, 0); err != nil {
		t.Fatal(err)
	}
}

// overwriteAndReplace overwrites the file at path in place with random
// bytes, then puts another one in its place by rename: a writer that
// writes under every read.
func overwriteAndReplace(t *testing.T, p *Provider, path string) {
	t.Helper()
	overwrite(t, p, path)
	junk := make([]byte, 90)
	rand.Read(junk)
	if err := writeFile(filepath.Dir(path), filepath.Base(path), junk); err != nil {
		t.Fatal(err)
	}
}

// TestRingChangedDuringRead replays, with a write between a read's open of
// data.key and its read, what TestCacheWriteRacesReads leaves to chance. A
// rotation replaces data.key by rename and overwrites the replaced file
// with random bytes, which a read that opened it reads: the read must not
// mark the account damaged, and must return the secret (must not). A
// file damaged in place is damage whether before the read or during it
// (must), and a file that changes under every read fails the call without
// marking the account damaged.
func TestRingChangedDuringRead(t *testing.T) {
	tests := []struct {
		name string
		// before runs before the read; write, between its open of data.key
		// and its read (each time if every, else the first time only).
		before  func(t *testing.T, p *Provider, path string)
		write   func(t *testing.T, p *Provider, path string)
		every   bool
		damaged bool
		code    silo.Code // of the Secret call; "" for none
	}{
		{
			name: "rotation overwrites the file being read",
			write: func(t *testing.T, p *Provider, path string) {
				// The test's own handle on the file the read opened shows
				// that the read meets the random bytes.
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := p.RotateDataKey(context.Background(), "acme"); err != nil {
					t.Error(err)
				}
				b, err := io.ReadAll(f)
				if err != nil {
					t.Fatal(err)
				}
				if _, why := decodeSlot(slotRing, b); why == "" {
					t.Error("the replaced data.key still decodes after the rotation; the case tests nothing")
				}
			},
		},
		{
			name:    "file overwritten in place during the read",
			write:   overwrite,
			damaged: true,
			code:    silo.CodeUnavailable,
		},
		{
			name:    "damaged file in place before the read",
			before:  overwrite,
			damaged: true,
			code:    silo.CodeUnavailable,
		},
		{
			name:  "file overwritten and replaced under every read",
			write: overwriteAndReplace,
			every: true,
			code:  silo.CodeUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			p := newTestProvider(t, Config{IdleTimeout: time.Hour, CacheRecheck: time.Hour})
			if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatal(err)
			}
			declareSecret(t, p, "acme", "token")
			if err := p.PutSecret(ctx, "acme", "token", []byte("s-0")); err != nil {
				t.Fatal(err)
			}
			d, err := p.Data(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(p.accounts, "acme", fileDataKey)
			if tt.before != nil {
				tt.before(t, p, path)
			}
			writes := 0
			if tt.write != nil {
				p.afterOpen = func(opened string) {
					if opened != path || writes > 0 && !tt.every {
						return
					}
					writes++
					tt.write(t, p, path)
				}
			}
			p.invalidate("acme") // the next read opens data.key
			_, err = d.Secret(ctx, "token")
			p.afterOpen = nil
			if tt.write != nil && writes == 0 {
				t.Fatal("the read did not open data.key; the case tests nothing")
			}
			if tt.code == "" {
				if err != nil {
					t.Errorf("Secret: got error %v, want none", err)
				}
			} else if err := isCode(err, tt.code); err != nil {
				t.Errorf("Secret: %v", err)
			}
			var de *DamageError
			damaged := p.Damaged("acme")
			switch {
			case tt.damaged && !errors.As(damaged, &de):
				t.Errorf("Damaged = %v, want a DamageError", damaged)
			case tt.damaged && de.File != fileDataKey:
				t.Errorf("Damaged names %s, want %s", de.File, fileDataKey)
			case !tt.damaged && damaged != nil:
				t.Errorf("Damaged = %v, want nil", damaged)
			}
			if tt.every && writes != maxChangedReads {
				t.Errorf("data.key was read %d times, want %d", writes, maxChangedReads)
			}
		})
	}
}

// TestKeyInfoDuringRotation: KeyInfo reads data.key without the account's
// lock, so a rotation may overwrite the file it opened; it must answer with
// the new key and not mark the account damaged (must not). Its twin: a
// data.key overwritten in place before KeyInfo marks it damaged (must).
func TestKeyInfoDuringRotation(t *testing.T) {
	for _, damaged := range []bool{false, true} {
		t.Run(map[bool]string{false: "rotation", true: "damaged in place"}[damaged], func(t *testing.T) {
			ctx := context.Background()
			p := newTestProvider(t, Config{})
			if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(p.accounts, "acme", fileDataKey)
			if damaged {
				overwrite(t, p, path)
			} else {
				writes := 0
				p.afterOpen = func(opened string) {
					if opened == path && writes == 0 {
						writes++
						if err := p.RotateDataKey(ctx, "acme"); err != nil {
							t.Error(err)
						}
					}
				}
			}
			ki, err := p.KeyInfo(ctx, "acme")
			p.afterOpen = nil
			if damaged {
				if err := isCode(err, silo.CodeUnavailable); err != nil {
					t.Errorf("KeyInfo: %v", err)
				}
				if p.Damaged("acme") == nil {
					t.Error("Damaged = nil, want a DamageError")
				}
				return
			}
			if err != nil {
				t.Fatalf("KeyInfo: got error %v, want none", err)
			}
			if d := p.Damaged("acme"); d != nil {
				t.Errorf("Damaged = %v, want nil", d)
			}
			want, err := p.KeyInfo(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if ki.Fingerprint != want.Fingerprint {
				t.Errorf("KeyInfo during the rotation: got key %s, want the new key %s", ki.Fingerprint, want.Fingerprint)
			}
		})
	}
}
