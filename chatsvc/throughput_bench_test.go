package chatsvc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	dto "github.com/prometheus/client_model/go"
)

// BenchmarkSendAck measures messages stored durably (group commit into
// SQLite + outbox) and acknowledged over real sockets, with many visitors
// sending at once; it reports msgs/s and the p50/p99 of send→ack.
//
//	go test ./chatsvc -run XXX -bench SendAck -benchtime 20000x
func BenchmarkSendAck(b *testing.B) {
	e := newEnv(b, "sqlite", func(c *Config) {
		c.Limits.VisitorMsgRate, c.Limits.VisitorMsgBurst = 1e9, 1e9
		c.Limits.IPConnectRate, c.Limits.IPConnectBurst = 1e9, 1e9
		c.Limits.MaxSocketsPerIP = 1e6
	})
	const visitors = 50
	type conn struct {
		c    *fws.Conn
		sent map[string]time.Time
	}
	conns := make([]*fws.Conn, visitors)
	for i := range conns {
		tok, _ := e.visitorSession("")
		h := http.Header{"Origin": {testOrigin}}
		c, _, err := fws.DefaultDialer.Dial(e.ws+"/ws/visitor?token="+tok, h)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		c.ReadMessage() // hello
		conns[i] = c
	}
	per := b.N/visitors + 1
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(2)
		sent := make([]time.Time, per)
		go func() {
			defer wg.Done()
			for j := 0; j < per; j++ {
				sent[j] = time.Now()
				msg := fmt.Sprintf(`{"type":"send","client_id":"%d-%d","text":"load message %d"}`, i, j, j)
				if err := c.WriteMessage(fws.TextMessage, []byte(msg)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, per)
			for got := 0; got < per; {
				_, data, err := c.ReadMessage()
				if err != nil {
					b.Error(err)
					return
				}
				var f struct {
					Type     string `json:"type"`
					ClientID string `json:"client_id"`
					Code     string `json:"code"`
				}
				json.Unmarshal(data, &f)
				switch f.Type {
				case "ack":
					var vi, j int
					fmt.Sscanf(f.ClientID, "%d-%d", &vi, &j)
					local = append(local, time.Since(sent[j]))
					got++
				case "error":
					b.Errorf("error frame %s", data)
					return
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if sum, n := histo(e.svc.metrics.commitBatch.(interface{ Write(*dto.Metric) error })); n > 0 {
		ss, _ := histo(e.svc.metrics.commitSeconds.(interface{ Write(*dto.Metric) error }))
		b.Logf("commits %d, ops/commit %.1f, seconds/commit %.4f", n, sum/float64(n), ss/float64(n))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

func histo(h interface{ Write(*dto.Metric) error }) (float64, uint64) {
	var m dto.Metric
	h.Write(&m)
	return m.Histogram.GetSampleSum(), m.Histogram.GetSampleCount()
}
