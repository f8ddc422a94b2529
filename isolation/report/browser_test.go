package report_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestHTMLHasNoExternalAssets(t *testing.T) {
	s, _ := signed(t)
	page, err := s.HTML()
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?i)(src|href)\s*=|@import|url\(`).Find(page); m != nil {
		t.Fatalf("page references an external asset: %q", m)
	}
}

// TestHTMLInChromium renders the report in headless Chromium and checks that
// the sentences a customer needs are visible.
func TestHTMLInChromium(t *testing.T) {
	bin := os.Getenv("SILO_TEST_CHROMIUM")
	if bin == "" {
		t.Skip("set SILO_TEST_CHROMIUM to a Chromium binary (e.g. SILO_TEST_CHROMIUM=/usr/bin/chromium after apt-get install -y chromium) to run the browser test")
	}
	s, _ := signed(t)
	page, err := s.HTML()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, page, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(filepath.Join(dir, "profile")),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+file), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	title, err := chromedp.Run(bctx, chromedp.Title())
	if err != nil {
		t.Fatalf("chromium title: %v", err)
	}
	text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
	if err != nil {
		t.Fatalf("chromium text: %v", err)
	}
	if title != "Isolation report: Acme <Corp> & Co" {
		t.Errorf("got title %q", title)
	}
	for _, want := range []string{
		"Isolation report: Acme <Corp> & Co",
		"Only your API keys (1 active key) and the code your provider deploys to your account (now the functions ingest) can reach your data",
		"no other customer's account, and nothing in the shared production account, can reach it",
		"Isolation was last proved on 25 November 2026",
		"Your table values, stored files and secrets are encrypted (AES-256-GCM, envelope) under keys that belong to your account alone",
		"the keys your values and files are stored under, and your configuration values are not",
		"Live attack probes have not been run",
		"silo report verify FILE",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("visible text lacks %q", want)
		}
	}
	// The embedded signed JSON is data, not visible text.
	if strings.Contains(text, `"signature"`) {
		t.Errorf("the signed JSON is visible on the page")
	}
}
