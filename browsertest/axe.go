package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// axe-core (the accessibility engine, from the npm registry) is a test
// dependency only: scripts/test.sh installs it into .test-deps/ at the
// module root, which git ignores; PARLEY_AXE_CORE names another axe.min.js.
const axeInstall = "npm install --prefix .test-deps axe-core@4 (scripts/test.sh does it), or set PARLEY_AXE_CORE to an axe.min.js"

var (
	axeOnce   sync.Once
	axeScript string
	axeErr    error
)

// AxePath is where the tests look for axe-core's axe.min.js.
func AxePath() string {
	if p := os.Getenv("PARLEY_AXE_CORE"); p != "" {
		return p
	}
	return filepath.Join(moduleRoot(), ".test-deps", "node_modules", "axe-core", "axe.min.js")
}

func loadAxe() (string, error) {
	axeOnce.Do(func() { axeScript, axeErr = readAxe(AxePath()) })
	return axeScript, axeErr
}

// readAxe reads axe-core's script, or says how to install it.
func readAxe(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("axe-core is missing (%v): install it with %s", err, axeInstall)
	}
	if !strings.Contains(string(b), "axe") {
		return "", fmt.Errorf("%s is not axe-core: install it with %s", path, axeInstall)
	}
	return string(b), nil
}

// Violation is one failed axe-core rule with the elements that fail it.
type Violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  any    `json:"target"`
		HTML    string `json:"html"`
		Summary string `json:"summary"`
	} `json:"nodes"`
}

func (v Violation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for i, n := range v.Nodes {
		if i == 5 {
			fmt.Fprintf(&b, "\n    … %d more", len(v.Nodes)-5)
			break
		}
		target, _ := json.Marshal(n.Target)
		fmt.Fprintf(&b, "\n    %s %s\n      %s", target, n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n      "))
	}
	return b.String()
}

// axeRun runs every axe-core rule on the whole document, open shadow roots
// included (the widget's), and returns the violations.
// Running animations (a panel fading in) are let finish first: contrast is
// judged on the settled page.
const axeRun = `Promise.all([document, ...[...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)]
  .flatMap(root => root.getAnimations()).map(a => a.finished.catch(() => null)))
.then(() => axe.run(document, {resultTypes: ['violations']})).then(r => JSON.stringify(r.violations.map(v => ({
  id: v.id, impact: v.impact, help: v.help,
  nodes: v.nodes.map(n => ({target: n.target, html: n.html.slice(0, 300), summary: n.failureSummary || ''}))}))))`

// Audit injects axe-core into the page and fails the test when any rule
// of serious or critical impact fails; lesser violations are logged. It
// returns every violation. A missing axe-core fails the test with the
// command that installs it (tests never skip for it).
func Audit(t testing.TB, ctx context.Context, name string) []Violation {
	t.Helper()
	src, err := loadAxe()
	if err != nil {
		t.Fatalf("accessibility audit %s: %v", name, err)
	}
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === 'object'`))
	if err != nil {
		t.Fatalf("accessibility audit %s: %v", name, err)
	}
	if !loaded {
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](src+"\n;true")); err != nil {
			t.Fatalf("accessibility audit %s: inject axe-core: %v", name, err)
		}
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](axeRun, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("accessibility audit %s: run axe-core: %v", name, err)
	}
	var vs []Violation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatalf("accessibility audit %s: decode %s: %v", name, out, err)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("accessibility audit %s: %s", name, v)
		} else {
			t.Logf("accessibility audit %s (not failing, %s): %s", name, v.Impact, v.ID)
		}
	}
	return vs
}
