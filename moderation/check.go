package moderation

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/parleychat/parley/ingest"
)

// MaxCheckLineBytes bounds one input line of RunCheck.
const MaxCheckLineBytes = 1 << 20

type checkIn struct {
	ID   *string `json:"id"`
	Text *string `json:"text"`
}

type checkOut struct {
	ID         string        `json:"id"`
	Action     string        `json:"action"`
	Categories []string      `json:"categories"`
	Spans      []ingest.Span `json:"spans"`
	Severity   int           `json:"severity"`
	Redacted   string        `json:"redacted,omitempty"`
	// Sources lists per category the detectors that found it.
	Sources []ingest.VerdictSource `json:"sources,omitempty"`
}

type checkErr struct {
	ID    string `json:"id"`
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// RunCheck is `parley moderate check`: it reads JSON lines
// {"id": "...", "text": "..."} from in and writes one JSON line per input
// to out, {"id", "action", "categories", "spans", "severity"} (and
// "redacted" when something was masked), judged with the policy in
// policyPath (the default policy when empty). A bad line gets
// {"id", "line", "error"} and the run goes on; blank lines are skipped.
// It returns an error only when the policy cannot be loaded or in/out fail.
func RunCheck(ctx context.Context, in io.Reader, out io.Writer, policyPath string) error {
	p := DefaultPolicy()
	if policyPath != "" {
		var err error
		if p, err = LoadPolicyFile(policyPath); err != nil {
			return err
		}
	}
	e, err := NewEngine(p)
	if err != nil {
		return fmt.Errorf("compile policy: %w", err)
	}
	r := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for n := 1; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		line, tooLong, err := readLine(r, MaxCheckLineBytes)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", n, err)
		}
		if errors.Is(err, io.EOF) && len(line) == 0 && !tooLong {
			break
		}
		var res any
		switch line = bytes.TrimSpace(line); {
		case tooLong:
			res = checkErr{Line: n, Error: fmt.Sprintf("line is longer than %d bytes", MaxCheckLineBytes)}
		case len(line) == 0:
			res = nil
		default:
			res = checkLine(e, line, n)
		}
		if res != nil {
			if err := enc.Encode(res); err != nil {
				return fmt.Errorf("write result %d: %w", n, err)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

func checkLine(e *Engine, line []byte, n int) any {
	var msg checkIn
	if err := json.Unmarshal(line, &msg); err != nil {
		// salvage the id for the error line if the object gets that far
		var idOnly struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(line, &idOnly)
		return checkErr{ID: idOnly.ID, Line: n, Error: "not a JSON object {\"id\", \"text\"}: " + err.Error()}
	}
	id := ""
	if msg.ID != nil {
		id = *msg.ID
	}
	switch {
	case msg.ID == nil || id == "":
		return checkErr{Line: n, Error: "id is missing"}
	case msg.Text == nil:
		return checkErr{ID: id, Line: n, Error: "text is missing"}
	case !utf8.ValidString(*msg.Text):
		return checkErr{ID: id, Line: n, Error: "text is not valid UTF-8"}
	}
	v := e.Check(*msg.Text)
	o := checkOut{ID: id, Action: v.Action, Categories: v.Categories, Spans: v.Spans, Severity: v.Severity, Redacted: v.Redacted, Sources: v.Sources}
	if o.Categories == nil {
		o.Categories = []string{}
	}
	if o.Spans == nil {
		o.Spans = []ingest.Span{}
	}
	return o
}

// readLine reads one line without its newline. A line longer than max is
// consumed and reported as tooLong instead of being held in memory.
func readLine(r *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, isPrefix, err := r.ReadLine()
		if !tooLong {
			if len(line)+len(chunk) > max {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err != nil {
			return line, tooLong, err
		}
		if !isPrefix {
			return line, tooLong, nil
		}
	}
}
