package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules enforces ARCHITECTURE.md's import rules with go list.
func TestImportRules(t *testing.T) {
	const module = "github.com/parleychat/parley/"
	allowed := map[string][]string{
		"ingest":        {},
		"sqlstore":      {},
		"egress":        {},
		"browsertest":   {},
		"bench":         {"ingest"},
		"access":        {"sqlstore"},
		"chatsvc":       {"ingest", "access", "sqlstore", "egress"},
		"moderation":    {"ingest", "access", "sqlstore"},
		"analytics":     {"ingest", "access", "sqlstore"},
		"dashboard":     {"access"},
		"webhooks":      {"ingest", "access", "sqlstore"},
		"notifications": {"ingest", "access", "sqlstore"},
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, module+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		rel := strings.TrimPrefix(pkg, module)
		top, _, _ := strings.Cut(rel, "/")
		rules, ok := allowed[top]
		if !ok {
			if top != "cmd" {
				t.Errorf("package %s is not in ARCHITECTURE.md's table", rel)
			}
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep, _, _ := strings.Cut(strings.TrimPrefix(imp, module), "/")
			if dep == top {
				continue
			}
			permitted := false
			for _, a := range rules {
				permitted = permitted || a == dep
			}
			if !permitted {
				t.Errorf("%s imports %s, which ARCHITECTURE.md does not allow", rel, dep)
			}
		}
	}
}
