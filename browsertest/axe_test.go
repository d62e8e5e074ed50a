package browsertest

import (
	"path/filepath"
	"strings"
	"testing"
)

// A run without axe-core fails (it is never skipped) and says how to get it.
func TestMissingAxeSaysHowToInstall(t *testing.T) {
	_, err := readAxe(filepath.Join(t.TempDir(), "axe.min.js"))
	if err == nil || !strings.Contains(err.Error(), "npm install --prefix .test-deps axe-core@4") || !strings.Contains(err.Error(), "PARLEY_AXE_CORE") {
		t.Fatalf("missing axe-core: %v", err)
	}
	if _, err := readAxe(AxePath()); err != nil {
		t.Fatalf("the axe-core that scripts/test.sh installs: %v", err)
	}
}
