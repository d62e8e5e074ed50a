package moderation

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunCheckJudgesLinesAndReportsBadOnes(t *testing.T) {
	in := strings.Join([]string{
		`{"id": "1", "text": "Hello, where is my order?"}`,
		`{"id": "2", "text": "you are an idiot"}`,
		`not json at all`,
		``,
		`{"id": "4", "text": "mail me at ana@example.com"}`,
		`{"text": "no id"}`,
		`{"id": "6"}`,
		`{"id": "7", "text": "` + strings.Repeat("x", MaxCheckLineBytes) + `"}`,
		`{"id": "8", "text": "sh1t"}`,
	}, "\n")
	var out strings.Builder
	if err := RunCheck(context.Background(), strings.NewReader(in), &out, ""); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		got = append(got, m)
	}
	if len(got) != 8 {
		t.Fatalf("got %d output lines, want 8 (blank line skipped):\n%s", len(got), out.String())
	}
	want := []struct{ id, action, errPart string }{
		{"1", "allow", ""}, {"2", "block", ""}, {"", "", "not a JSON object"}, {"4", "redact", ""},
		{"", "", "id is missing"}, {"6", "", "text is missing"}, {"", "", "longer than"}, {"8", "flag", ""},
	}
	for i, w := range want {
		g := got[i]
		if id, _ := g["id"].(string); id != w.id {
			t.Errorf("line %d: id %v, want %q", i, g["id"], w.id)
		}
		if w.errPart != "" {
			if e, _ := g["error"].(string); !strings.Contains(e, w.errPart) {
				t.Errorf("line %d: error %v, want %q", i, g["error"], w.errPart)
			}
			continue
		}
		if g["action"] != w.action {
			t.Errorf("line %d: action %v, want %s", i, g["action"], w.action)
		}
		if _, ok := g["spans"].([]any); !ok {
			t.Errorf("line %d: spans missing: %v", i, g)
		}
	}
}

func TestRunCheckUsesPolicyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, []byte(`{"actions": {"profanity": "allow"}, "block": {"custom": ["banana*"]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	in := `{"id": "a", "text": "shit"}` + "\n" + `{"id": "b", "text": "bananas"}`
	if err := RunCheck(context.Background(), strings.NewReader(in), &out, path); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"action":"allow"`) || !strings.Contains(lines[1], `"action":"block"`) || !strings.Contains(lines[1], `"custom"`) {
		t.Fatalf("output:\n%s", out.String())
	}
	if err := os.WriteFile(path, []byte(`{"regexes": [{"name": "x", "pattern": "(", "category": "spam"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := RunCheck(context.Background(), strings.NewReader(in), &out, path)
	if err == nil || !strings.Contains(err.Error(), "regexes[0]") {
		t.Fatalf("invalid policy: %v", err)
	}
}
