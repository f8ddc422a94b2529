//go:build linux

package local

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/providertest"
)

// smallDisk mounts a tmpfs of size (mount's size= option) on a new
// directory and returns it, or skips the test where the machine does not
// let it mount one.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); run as root to test a full disk", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

// fillDisk writes the file filler in dir until the file system is full,
// and returns its path (removing it frees the space).
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for {
		if _, err := f.Write(make([]byte, 4096)); err != nil {
			return filler // full
		}
	}
}

// TestDiskFullNamesTheFile: on a full file system (a 1 MiB tmpfs, where
// the machine lets the test mount one), setting a secret fails with an
// error that names secrets.json and says the disk is full, not "internal
// error"; once space is freed the same call succeeds (the twin).
func TestDiskFullNamesTheFile(t *testing.T) {
	dir := smallDisk(t, "1m")
	ctx := context.Background()
	p := newTestProvider(t, Config{Dir: filepath.Join(dir, "silo")})
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	declareSecret(t, p, "acme", "token")
	filler := fillDisk(t, dir)

	err := p.PutSecret(ctx, "acme", "token", []byte("v"))
	msg := silo.UserMessage(err)
	if silo.ErrorCode(err) != silo.CodeUnavailable || !strings.Contains(msg, "secrets.json") || !strings.Contains(msg, "disk is full") {
		t.Fatalf("PutSecret on a full disk: %q (code %s), want a message naming secrets.json and the full disk", msg, silo.ErrorCode(err))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := p.PutSecret(ctx, "acme", "token", []byte("v")); err != nil {
		t.Fatalf("PutSecret after freeing space: %v", err)
	}
}

// TestDamagedKeyRingBlamesTheRightFile: a data.key whose wrapped key is
// damaged is reported as data.key's damage (restoring master.key would not
// help), while a master.key that is not the one the ring was wrapped with
// is reported as such, with master.key to restore.
func TestDamagedKeyRingBlamesTheRightFile(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (string, *Provider) {
		dir := t.TempDir()
		p, err := New(Config{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		declareSecret(t, p, "acme", "token")
		if err := p.PutSecret(ctx, "acme", "token", []byte("v")); err != nil {
			t.Fatal(err)
		}
		p.Close()
		return dir, p
	}
	secret := func(t *testing.T, dir string) error {
		p := newTestProvider(t, Config{Dir: dir})
		d, err := p.Data(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.Secret(ctx, "token")
		return err
	}
	secretErr := func(t *testing.T, dir string) string {
		err := secret(t, dir)
		if err == nil {
			t.Fatal("Secret succeeded, want an error")
		}
		return silo.UserMessage(err)
	}

	t.Run("data.key damaged", func(t *testing.T) {
		dir, _ := setup(t)
		path := filepath.Join(dir, "accounts", "acme", fileDataKey)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		end := len(b) // the end of the ring: the file's, or the account file's ring's
		if bytes.HasPrefix(b, []byte(accountMagic)) {
			end = len(accountMagic) + 4 + int(binary.BigEndian.Uint32(b[len(accountMagic):]))
		}
		b[end-5] ^= 0xff // inside the wrapped key
		if err := os.WriteFile(path, b, fileMode); err != nil {
			t.Fatal(err)
		}
		msg := secretErr(t, dir)
		if !strings.Contains(msg, "data.key is damaged") || !strings.Contains(msg, "master.key is not at fault") || strings.Contains(msg, "restore master.key") {
			t.Fatalf("Secret: %q, want data.key blamed and master.key cleared", msg)
		}
	})
	t.Run("another master.key", func(t *testing.T) {
		dir, _ := setup(t)
		other, _ := setup(t)
		b, err := os.ReadFile(filepath.Join(other, "master.key"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "master.key"), b, fileMode); err != nil {
			t.Fatal(err)
		}
		msg := secretErr(t, dir)
		if !strings.Contains(msg, "does not hold; restore the master.key that holds it") || strings.Contains(msg, "data.key is damaged") {
			t.Fatalf("Secret: %q, want master.key blamed", msg)
		}
	})
	t.Run("undamaged", func(t *testing.T) {
		dir, _ := setup(t)
		if err := secret(t, dir); err != nil {
			t.Fatalf("Secret of an undamaged account: %v", err)
		}
	})
}

// TestFullDiskStillServesReads: an account store opened on a full file
// system, whose log cannot be started (a store closed cleanly, its log
// gone with nothing in it that the store lacks), still serves reads; a
// write fails saying the disk is full, and once space is freed writes
// work again (the twin).
func TestFullDiskStillServesReads(t *testing.T) {
	dir := smallDisk(t, "2m")
	ctx := context.Background()
	cfg := Config{Dir: filepath.Join(dir, "silo")}
	p := newTestProvider(t, cfg)
	if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, p, "acme", providertest.Stack(t))
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "f1", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil { // checkpoints: data.db holds f1
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "silo", "accounts", "acme", fileLog)); err != nil {
		t.Fatal(err)
	}
	filler := fillDisk(t, dir)

	p = newTestProvider(t, cfg)
	d, err = p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get(ctx, "findings", "f1"); err != nil || string(v) != "kept" {
		t.Fatalf("read on a full disk: %q, %v; want kept", v, err)
	}
	err = d.Put(ctx, "findings", "f2", []byte("new"))
	if msg := silo.UserMessage(err); err == nil || !strings.Contains(msg, "disk is full") {
		t.Fatalf("write on a full disk: %v; want an error saying the disk is full", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "f2", []byte("new")); err != nil {
		t.Fatalf("write after freeing space: %v", err)
	}
	if v, err := d.Get(ctx, "findings", "f2"); err != nil || string(v) != "new" {
		t.Fatalf("read of the write after freeing space: %q, %v", v, err)
	}
}
