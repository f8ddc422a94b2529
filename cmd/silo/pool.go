package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/spf13/cobra"
)

// maxPoolSize bounds --aws-pool-size: every pool account is a real AWS
// account, and organizations start with a quota of 10.
const maxPoolSize = 100

// pooler is a provider with a warm pool of accounts (the AWS provider).
type pooler interface {
	Pool(ctx context.Context) (siloaws.PoolStatus, error)
	FillPool(ctx context.Context) error
}

// poolRefill is how often silo server and silo up top up the warm pool; a
// claim makes the pool one short until then.
const poolRefill = 10 * time.Second

// fillPool tops up the provider's warm pool now and every poolRefill until
// ctx ends, if the provider has one. A failure is logged once per distinct
// message, after the name of the command that serves (silo server, silo
// up), and retried at the next tick.
func fillPool(ctx context.Context, g *globals, serving string, prov provider.Provider) {
	p, ok := prov.(pooler)
	if !ok {
		return
	}
	last := ""
	for {
		err := p.FillPool(ctx)
		if ctx.Err() != nil {
			return
		}
		if msg := silo.UserMessage(err); err != nil && msg != last {
			fmt.Fprintf(g.stderr, "%s: warm pool: %s\n", serving, msg)
			last = msg
		} else if err == nil {
			last = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(poolRefill):
		}
	}
}

// errNoPool refuses silo pool on the local provider.
var errNoPool = silo.Errorf(silo.CodeInvalid, "the warm pool exists on the AWS provider only; this data dir uses the local provider, which creates accounts at once")

// openPooler returns the data dir's provider for silo pool, and what to
// call when done. To fill the pool it opens the platform, which gives the
// provider this installation's ID to tag the pool accounts with
// (provider/aws/installation.go); to show it, the provider alone.
func openPooler(ctx context.Context, g *globals, fill bool) (provider.Provider, func(), error) {
	if fill {
		saved, err := readChoice(g.dataDir)
		if err != nil {
			return nil, nil, err
		}
		if c, err := resolveChoice(saved, g.prov); err != nil || c.Name != "aws" {
			return nil, nil, cmp.Or(err, errNoPool)
		}
		plat, err := openPlatform(ctx, g, "", "")
		if err != nil {
			return nil, nil, err
		}
		return plat.Provider, func() { plat.Close() }, nil
	}
	prov, save, err := openProvider(ctx, g, nil)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := prov.(pooler); ok {
		if err := os.MkdirAll(g.dataDir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("create the data dir: %w", err)
		}
		if err := save(); err != nil {
			return nil, nil, err
		}
	}
	return prov, func() {}, nil
}

func newPoolCmd(g *globals) *cobra.Command {
	var fill bool
	cmd := &cobra.Command{
		Use:   "pool",
		Short: "Show the AWS provider's warm pool of accounts created ahead for onboarding",
		Long: `pool shows the warm pool: its size (--aws-pool-size, saved in the data dir), the AWS
accounts ready to be claimed by the next onboardings, how many AWS is still creating, and
the pool accounts a claim moved out of the pool but has not finished (see docs/aws.md).
silo server and silo up refill it every 10 seconds, to the size they started with; --fill
tops it up now and waits (AWS takes minutes per account).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			prov, done, err := openPooler(ctx, g, fill)
			if err != nil {
				return err
			}
			defer done()
			p, ok := prov.(pooler)
			if !ok {
				return errNoPool
			}
			if rs, ok := runningServer(g.dataDir); ok && g.prov.poolSize != "" {
				fmt.Fprintf(g.stderr, "note: the pool size is saved, but the server running on this data dir (%s) keeps the size it started with until it restarts\n", rs.URL)
			}
			if fill {
				if err := p.FillPool(ctx); err != nil {
					return err
				}
			}
			st, err := p.Pool(ctx)
			if err != nil {
				return err
			}
			return g.print(st, func(w io.Writer) {
				ready := "none"
				if len(st.Ready) > 0 {
					ready = strings.Join(st.Ready, ", ")
				}
				fmt.Fprintf(w, "Size      %d\nReady     %d (%s)\nCreating  %d\n", st.Size, len(st.Ready), ready, st.Creating)
				for _, tk := range st.Taken {
					owner := fmt.Sprintf("no owner named yet; returned to the pool once the claim is %v old", siloaws.DefaultClaimTimeout)
					if tk.Account != "" {
						owner = "claimed for " + string(tk.Account) + "; its next onboarding finishes the claim"
					}
					fmt.Fprintf(w, "Taken     %s (%s)\n", tk.AWSAccountID, owner)
				}
			})
		},
	}
	cmd.Flags().BoolVar(&fill, "fill", false, "top the pool up now and wait for AWS")
	return cmd
}
