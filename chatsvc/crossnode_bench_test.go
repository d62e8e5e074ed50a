package chatsvc

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// The two candidate transports for delivering a frame written on one chat
// node to sockets on another, measured at a paced rate: a Kafka topic read
// by every node, and PostgreSQL LISTEN/NOTIFY. Each benchmark sends
// crossNodeRate frames a second for crossNodeFor and reports the send →
// receive latency quantiles (docs/benchmarks.md, "Cross-node transport").
const (
	crossNodeRate = 2000
	crossNodeFor  = 5 * time.Second
)

// paceAndMeasure calls send crossNodeRate times a second with a payload
// carrying its send time, and reports latency from the times recv got.
func paceAndMeasure(b *testing.B, send func(payload []byte) error, received <-chan time.Duration) {
	total := int(crossNodeRate * crossNodeFor / time.Second)
	lat := make([]time.Duration, 0, total)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		timeout := time.After(crossNodeFor + 10*time.Second)
		for len(lat) < total {
			select {
			case d := <-received:
				lat = append(lat, d)
			case <-timeout:
				return
			}
		}
	}()
	interval := time.Second / crossNodeRate
	start := time.Now()
	for i := 0; i < total; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		p := make([]byte, 200)
		binary.BigEndian.PutUint64(p, uint64(time.Now().UnixNano()))
		if err := send(p); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	if len(lat) < total {
		b.Fatalf("received %d of %d", len(lat), total)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")
	b.ReportMetric(q(1), "max_ms")
	b.Logf("%d frames at %d/s: p50 %.2f ms, p99 %.2f ms, max %.2f ms", len(lat), crossNodeRate, q(0.5), q(0.99), q(1))
}

func sentAt(p []byte) time.Duration {
	return time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(p))))
}

func BenchmarkCrossNodeKafka(b *testing.B) {
	broker, err := ingest.StartEmbedded(ingest.EmbeddedConfig{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const topic, partitions = "bench.live", 4
	if err := ingest.EnsureTopics(ctx, broker.Addrs(), []ingest.TopicSpec{{Name: topic, Partitions: partitions, Retention: time.Hour}}); err != nil {
		b.Fatal(err)
	}
	received := make(chan time.Duration, 1<<16)
	for p := 0; p < partitions; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: broker.Addrs(), Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
		if err := r.SetOffset(kafka.LastOffset); err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		go func() {
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return
				}
				received <- sentAt(m.Value)
			}
		}()
	}
	w := &kafka.Writer{Addr: kafka.TCP(broker.Addrs()...), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireOne,
		BatchTimeout: time.Millisecond, Async: true}
	defer w.Close()
	time.Sleep(500 * time.Millisecond) // readers positioned at the end
	b.ResetTimer()
	for range b.N {
		n := 0
		paceAndMeasure(b, func(p []byte) error {
			n++
			return w.WriteMessages(ctx, kafka.Message{Key: []byte(fmt.Sprint(n % 64)), Value: p})
		}, received)
	}
}

func BenchmarkCrossNodePostgresNotify(b *testing.B) {
	url := sqltest.PostgresURL(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listen, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer listen.Close(context.Background())
	if _, err := listen.Exec(ctx, `LISTEN live`); err != nil {
		b.Fatal(err)
	}
	send, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer send.Close(context.Background())
	received := make(chan time.Duration, 1<<16)
	go func() {
		for {
			n, err := listen.WaitForNotification(ctx)
			if err != nil {
				return
			}
			received <- sentAt(decodeTime(n.Payload))
		}
	}()
	b.ResetTimer()
	for range b.N {
		paceAndMeasure(b, func(p []byte) error {
			// NOTIFY payloads are text: the send time travels as letters.
			_, err := send.Exec(ctx, `SELECT pg_notify('live', $1)`, string(encodeTime(p)))
			return err
		}, received)
	}
}

// encodeTime keeps the 8-byte send time but makes the payload valid text.
func encodeTime(p []byte) []byte {
	out := make([]byte, 0, len(p)*2)
	for _, c := range p[:8] {
		out = append(out, 'a'+c>>4, 'a'+c&15)
	}
	for range p[8:] {
		out = append(out, 'x')
	}
	return out
}

func decodeTime(s string) []byte {
	out := make([]byte, 8)
	for i := range out {
		out[i] = (s[2*i]-'a')<<4 | (s[2*i+1] - 'a')
	}
	return out
}
