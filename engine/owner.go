package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/silo-run/silo/store"
)

// An intent names the process that journaled it (its owner) in its
// attempt: host~pid~random. Recover tells an intent whose process died
// from one still being worked on by its owner:
//
//   - an owner on this host is alive while its process is (a signal 0 to
//     its pid); a pid reused by another process keeps the intent pending
//     longer, never shorter;
//   - an owner on another host cannot be looked at, so it proves it is
//     alive: while an operation is under way, its process moves the
//     Updated time of the operation's pending intents to Now every
//     Config.Heartbeat (hold), and Recover on another host takes over
//     only an intent not moved for Config.RecoverGrace — four heartbeats
//     missed. That holds as long as the hosts' clocks agree to within
//     RecoverGrace minus Heartbeat (NTP keeps them within a second), and
//     a process cut off from the store for longer than RecoverGrace while
//     it works is taken for dead.
//
// Whoever takes an intent over claims it in the transaction that settles
// it, which reads it again and goes on only if it is still pending and its
// owner still not alive: of several servers recovering at once, one
// settles it and the others leave it (RecoveryReport.Settled).

// newAttempt returns an attempt nonce naming its owner: host~pid~random.
func (e *Engine) newAttempt() string {
	var b [6]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s~%d~%s", e.cfg.Host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ownerHost returns host, or this machine's name if host is empty, made
// fit for an attempt nonce.
func ownerHost(host string) string {
	if host == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		host = h
	}
	return strings.NewReplacer("/", "_", "~", "_").Replace(host)
}

// ownerLive reports whether the process that journaled intent in may still
// be working on it: a live process of this host, or a process of another
// host whose heartbeat moved the intent within RecoverGrace. Intents whose
// key names no owner (those of other journal users, such as rollout claims)
// are reconciled as before.
func (e *Engine) ownerLive(in store.Intent) bool {
	var attempt string
	parts := strings.Split(in.Key, "/")
	switch in.Action {
	case "apply":
		if len(parts) > 3 {
			attempt = parts[3]
		}
	case "create-account", "delete-account":
		if len(parts) > 2 {
			attempt = parts[2]
		}
	}
	f := strings.Split(attempt, "~")
	if len(f) != 3 {
		return false
	}
	if f[0] != e.cfg.Host {
		return e.cfg.Now().Sub(in.Updated) < e.cfg.RecoverGrace
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		return false
	}
	return pid == os.Getpid() || processAlive(pid)
}

// processAlive reports whether a process with the given ID exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// hold is the heartbeat of an operation under way: until the returned
// release is called, it moves the Updated time of the intents seqs (those
// still pending) to Now every Config.Heartbeat. release stops it and
// waits until it has stopped, so that no heartbeat follows the commit
// that finishes the intents. A heartbeat that fails is logged: the
// operation goes on, and the next heartbeat tries again.
func (e *Engine) hold(ctx context.Context, seqs ...int64) (release func()) {
	ctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(e.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := e.cfg.Store.Update(ctx, func(tx store.Tx) error { return tx.TouchIntents(seqs, e.cfg.Now()) })
			if err != nil && ctx.Err() == nil {
				e.cfg.Logger.Warn("could not renew the heartbeat of an operation under way; another server may take it over once it is older than the recovery grace", "error", err)
			}
		}
	}()
	return func() { stop(); <-ended }
}
