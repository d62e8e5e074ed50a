package moderation

import (
	"bufio"
	"embed"
	"fmt"
	"slices"
	"strings"
	"sync"
)

//go:embed lists/*.txt
var listFS embed.FS

// Languages lists the languages that have default word lists.
var Languages = []string{"en", "es", "de", "fr", "pt"}

// List sections that are not categories.
const (
	secDirected = "directed" // counts only when aimed at the reader, as abuse
	secPronoun  = "pronoun"
	secLinker   = "linker"
	secAllow    = "allow"
)

// listEntry is one line of a default list.
type listEntry struct {
	lang, section, raw string
	line               int
}

var (
	defaultListsOnce sync.Once
	defaultLists     map[string][]listEntry // language → entries
	defaultListsErr  error
)

// loadDefaultLists parses the embedded lists once.
func loadDefaultLists() (map[string][]listEntry, error) {
	defaultListsOnce.Do(func() {
		defaultLists = map[string][]listEntry{}
		for _, lang := range Languages {
			b, err := listFS.ReadFile("lists/" + lang + ".txt")
			if err != nil {
				defaultListsErr = fmt.Errorf("read default list %s: %w", lang, err)
				return
			}
			entries, err := parseList(lang, string(b))
			if err != nil {
				defaultListsErr = err
				return
			}
			defaultLists[lang] = entries
		}
	})
	return defaultLists, defaultListsErr
}

var listSections = append([]string{secDirected, secPronoun, secLinker, secAllow}, Categories...)

func parseList(lang, text string) ([]listEntry, error) {
	var out []listEntry
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = strings.Trim(line, "[]")
			if !slices.Contains(listSections, section) {
				return nil, fmt.Errorf("list %s line %d: unknown section [%s]", lang, n, section)
			}
			continue
		}
		if section == "" {
			return nil, fmt.Errorf("list %s line %d: term before any [section]", lang, n)
		}
		out = append(out, listEntry{lang: lang, section: section, raw: line, line: n})
	}
	return out, sc.Err()
}
