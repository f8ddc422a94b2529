package platform

import (
	"context"
	"time"

	"github.com/silo-run/silo/rollout"
)

// startPublishing makes the rollout gates of this server judge the
// requests of every server sharing its store: the runtime's own metrics
// plus what the others published (rollout.Published), and it publishes
// this server's every rollout.PublishEvery until Close, which publishes
// them once more.
func (p *Platform) startPublishing() rollout.Metrics {
	p.published = rollout.NewPublished(runtimeMetrics{p.Runtime}, p.db, p.cfg.Now)
	p.stopPublish, p.publishDone = make(chan struct{}), make(chan struct{})
	go p.publishLoop()
	return p.published
}

// publishLoop publishes this server's metrics every rollout.PublishEvery
// and drops those of servers long gone every minute, until stopPublish is
// closed. A failure is logged and tried again at the next tick.
func (p *Platform) publishLoop() {
	defer close(p.publishDone)
	t := time.NewTicker(rollout.PublishEvery)
	defer t.Stop()
	var dropped time.Time
	for {
		select {
		case <-p.stopPublish:
			return
		case now := <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := p.published.Publish(ctx); err != nil {
				p.cfg.Logger.Warn("platform: publish this server's request metrics for the rollout gates", "error", err)
			}
			if now.Sub(dropped) >= time.Minute {
				dropped = now
				if _, err := p.published.Drop(ctx); err != nil {
					p.cfg.Logger.Warn("platform: drop the request metrics of servers no longer heard from", "error", err)
				}
			}
			cancel()
		}
	}
}

// stopPublishing ends publishLoop and publishes what this server counted
// since its last tick, so that the other servers' gates count it.
func (p *Platform) stopPublishing() error {
	if p.stopPublish == nil {
		return nil
	}
	close(p.stopPublish)
	<-p.publishDone
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.published.Publish(ctx)
}
