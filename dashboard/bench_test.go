package dashboard

import (
	"io"
	"net/http"
	"testing"

	"github.com/parleychat/parley/access"
)

// BenchmarkAppShell measures one signed-in page request end to end over
// HTTP: session lookup in SQLite, role check, template render.
func BenchmarkAppShell(b *testing.B) {
	s := startServer(b)
	c := s.sessionAs(b, access.Admin)
	req, _ := http.NewRequest("GET", s.URL+"/app/admin/users", nil)
	for _, ck := range c.http.Jar.Cookies(req.URL) {
		req.AddCookie(ck)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// BenchmarkAsset measures serving one embedded module from memory.
func BenchmarkAsset(b *testing.B) {
	s := startServer(b)
	d := mustLoadAssets()
	req, _ := http.NewRequest("GET", s.URL+d.prefix()+"js/chart.js", nil)
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		b.SetBytes(n)
	}
}
