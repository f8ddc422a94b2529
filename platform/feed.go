package platform

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// listenFeed starts receiving the store's change feed, when it has one:
// every change announced by any server sharing the store drops this
// platform's cached view of the account (all of them on a resync), so a key
// revoked or an account suspended through another server is refused here
// from the next request after the announcement arrives. It waits (briefly)
// until the listener is connected, so that changes announced after Open
// returns are not missed.
func (p *Platform) listenFeed() {
	if p.feed == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stopFeed, p.fed = cancel, make(chan struct{})
	ready := make(chan struct{})
	var once bool
	go func() {
		defer close(p.fed)
		err := p.feed.Listen(ctx, func(c store.Change) {
			if c.What == store.ChangeResync {
				p.Invalidate("")
				if !once {
					once = true
					close(ready)
				}
				return
			}
			p.Invalidate(c.Account)
		})
		if ctx.Err() == nil {
			p.cfg.Logger.Error("change feed stopped; changes made by other servers are seen within the refresh interval", "error", err)
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		p.cfg.Logger.Warn("change feed not connected yet; changes made by other servers are seen within the refresh interval until it is")
	}
}

// changed announces that an account (every account for "") changed by
// means other than the control plane's methods (a release applied by a
// deploy or a rollout): this platform and every other server sharing the
// store drop their cached view of it. A failed announcement is logged; the
// other servers then see the change within Config.Refresh.
func (p *Platform) changed(ctx context.Context, id silo.AccountID) {
	if err := p.Plane.Announce(ctx, store.Change{Account: id, What: "release"}); err != nil {
		p.cfg.Logger.Warn("announce change", "account", id, "error", err)
	}
}

// runnerOwner names this platform's rollout runner in its leases. On a
// store of its own (SQLite) one process serves the data directory at a
// time, so the name is the data directory's: a restarted server takes its
// rollouts back at once. On a shared store each Platform has a name of its
// own (host, process, random), so two servers never both hold a lease;
// a rollout whose server died is taken over when its lease expires.
func (p *Platform) runnerOwner() string {
	if p.feed == nil {
		return "platform:" + p.cfg.DataDir
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("platform:%s:%d:%s", host, os.Getpid(), rand.Text()[:10])
}
