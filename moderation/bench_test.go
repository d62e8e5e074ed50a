package moderation

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/ingest"
)

// benchText is a realistic mix of support chat: mostly clean sentences
// with some PII, links and swearing.
func benchText(n int) string {
	lines := []string{
		"Hi, I ordered a blue jacket last week and it still hasn't arrived, can you check order 4839201?",
		"The checkout page keeps spinning after I enter my card details on mobile.",
		"Honestly this is frustrating, I just want my money back by Friday please.",
		"My email is sarah.connor@example.com and my phone is +44 7700 900123.",
		"See the screenshot at https://imgur.com/a/abc123 for the error message.",
		"This fucking app logged me out again and I lost my cart.",
		"¿Cuándo llega mi pedido? Gracias por la ayuda.",
		"Ich möchte meine Lieferadresse ändern, bitte.",
	}
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(lines[i%len(lines)])
		b.WriteByte(' ')
	}
	return b.String()
}

// tenThousandTerms makes 10,000 distinct custom terms with a mix of
// wildcards, as a large site's list would hold.
func tenThousandTerms() []string {
	r := rand.New(rand.NewPCG(1, 2))
	const letters = "abcdefghijklmnopqrstuvwxyz"
	seen := map[string]bool{}
	var out []string
	for len(out) < 10000 {
		n := 4 + r.IntN(8)
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteByte(letters[r.IntN(26)])
		}
		t := b.String()
		switch r.IntN(10) {
		case 0:
			t += "*"
		case 1:
			t = "*" + t
		case 2:
			t += " " + t[:3]
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

func bigEngine(b testing.TB) *Engine {
	p := DefaultPolicy()
	p.Block = map[string][]string{CatCustom: tenThousandTerms()}
	e, err := NewEngine(p)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkCheck10kTerms measures throughput (MB/s on one core) with the
// default lists of five languages plus 10,000 custom terms, the default
// regexes and every PII and link detector.
func BenchmarkCheck10kTerms(b *testing.B) {
	e := bigEngine(b)
	for _, size := range []int{200, 4 << 10} {
		text := benchText(size)
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				e.Check(text)
			}
			if cpu := cpuTime() - cpu0; cpu > 0 {
				b.ReportMetric(float64(len(text))*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
			}
		})
	}
}

// BenchmarkInlineCheck measures the per-message cost of the inline check
// chatsvc calls before delivery (cached site policy, flood bookkeeping).
func BenchmarkInlineCheck(b *testing.B) {
	s, err := NewInlineChecker(openStore(b, "sqlite"), InlineConfig{})
	if err != nil {
		b.Fatal(err)
	}
	msgs := []string{
		"Hi, where is my order 4839201? It was due yesterday.",
		"This fucking app logged me out again.",
		"My email is sarah.connor@example.com",
		"you are an idiot",
	}
	ctx := context.Background()
	s.CheckInline(ctx, "site-1", "warm", msgs[0])
	visitors := make([]string, 1000)
	for i := range visitors {
		visitors[i] = fmt.Sprintf("v%d", i)
	}
	i := 0
	cpu0 := cpuTime()
	for b.Loop() {
		s.CheckInline(ctx, "site-1", visitors[i%len(visitors)], msgs[i%len(msgs)])
		i++
	}
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkNewEngine10kTerms measures compiling a large policy (policy
// saves and cache refreshes pay it).
func BenchmarkNewEngine10kTerms(b *testing.B) {
	p := DefaultPolicy()
	p.Block = map[string][]string{CatCustom: tenThousandTerms()}
	for b.Loop() {
		if _, err := NewEngine(p); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTenThousandTermsStayFast(t *testing.T) {
	e := bigEngine(t)
	text := benchText(64 << 10)
	start := time.Now()
	v := e.Check(text)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("checking 64 KiB took %s", d)
	}
	if !v.Has(CatPII) || !v.Has(CatProfanity) {
		t.Fatalf("verdict %v", v.Categories)
	}
}

// BenchmarkWorkerBatch measures the workers' transaction on each store:
// one op is a batch of 500 new visitor messages (one in five abusive,
// so queued) judged and committed with context, flood marks, items,
// verdict events and processed markers.
func BenchmarkWorkerBatch(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			s := newTestService(b, backend)
			ctx := context.Background()
			texts := []string{"Hi, where is my order 4839201?", "you are an idiot", "My email is sarah.connor@example.com",
				"The checkout page keeps spinning", "Can I change the delivery address?"}
			const size = 500
			n := 0
			for b.Loop() {
				b.StopTimer()
				batch := make([]ingest.Record, size)
				for i := range batch {
					n++
					batch[i] = chatMessage(b, "site-1", fmt.Sprintf("c%d", n%50), ingest.RoleVisitor, fmt.Sprintf("v%d", n%200), int64(n), texts[n%len(texts)], time.Now())
				}
				b.StartTimer()
				if _, err := s.handle(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
