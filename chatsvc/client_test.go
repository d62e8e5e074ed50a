package chatsvc

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/parleychat/parley/ingest"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// A visitor that stops reading fills its socket, then its outbound queue;
// the server then closes it with 1013 after flushing what was queued, and
// every other connection carries on.
func TestSlowClientClosedWith1013(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend, func(c *Config) { c.Limits.SendQueue = 8 })
		token, visitorID := e.visitorSession("")
		h := http.Header{}
		h.Set("Origin", testOrigin)
		slow, _, err := fws.DefaultDialer.Dial(e.ws+"/ws/visitor?token="+url.QueryEscape(token), h)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer slow.Close()
		bystanderToken, _ := e.visitorSession("")
		bystander := e.visitorSocket(bystanderToken)

		// 64 MiB of frames is far more than loopback socket buffers hold, so
		// the writer blocks and the 8-frame queue overflows.
		pad := encode(map[string]string{"type": "pad", "x": strings.Repeat("a", 64<<10)})
		for i := 0; i < 1000 && !e.slowClosed(visitorID); i++ {
			e.svc.hub.toVisitor(visitorID, pad, nil)
		}
		if got := e.slowClients(); got != 1 {
			t.Fatalf("slow clients counted %v, want 1", got)
		}

		// The slow client now reads: hello, queued frames, then the close.
		_ = slow.SetReadDeadline(time.Now().Add(20 * time.Second))
		frames := 0
		for {
			_, _, err := slow.ReadMessage()
			if err != nil {
				var ce *fws.CloseError
				if !errors.As(err, &ce) || ce.Code != closeQueue {
					t.Fatalf("after %d frames: got %v, want close 1013", frames, err)
				}
				if !strings.Contains(ce.Text, "reconnect") {
					t.Errorf("close reason %q does not tell the client to reconnect", ce.Text)
				}
				break
			}
			frames++
		}
		if frames < 2 {
			t.Fatalf("got %d frames before the close, want the hello and queued frames", frames)
		}
		bystander.send(map[string]any{"type": "ping", "ref": "still"})
		bystander.expect("pong", byRef("still"))
		poll(t, "slow visitor removed from the hub", 5*time.Second, func() bool { return !e.svc.hub.visitorOnline(visitorID) })
	})
}

func (e *env) slowClosed(string) bool { return e.slowClients() > 0 }

func (e *env) slowClients() float64 {
	var m dto.Metric
	if err := e.svc.metrics.slowClients.Write(&m); err != nil {
		e.t.Fatalf("read slow client counter: %v", err)
	}
	return m.GetCounter().GetValue()
}

// TestIdleConnectionMemory bounds the server's Go heap and goroutines per
// idle visitor socket. The clients are raw TCP
// connections that perform the handshake by hand and then hold no
// goroutine or buffer, so nearly all of the growth is the server's. The
// heap bound catches a per-connection buffer like the 1,024-frame channel
// that once cost 34 KiB; the goroutine count, a second goroutine per socket.
// `parley bench connections` gives the precise figure.
func TestIdleConnectionMemory(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		const n = 2000
		const heapBound = 13 << 10 // 10.1 KiB measured with -race (tenth session)
		e := newEnv(t, backend, func(c *Config) {
			c.Limits.IPConnectRate, c.Limits.IPConnectBurst = 1e6, 1e6
			c.Limits.MaxSocketsPerIP = 1e6 // every client is 127.0.0.1
		})
		addr := strings.TrimPrefix(e.ws, "ws://")
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i] = signToken(e.svc.cfg.Secret, visitorClaims{Site: e.site.ID, Visitor: ingest.NewID(), Expires: time.Now().Add(time.Hour).Unix()})
		}
		handshake := func(token string) (net.Conn, error) {
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return nil, err
			}
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "GET /ws/visitor?token=%s HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", url.QueryEscape(token), addr, testOrigin)
			br := bufio.NewReaderSize(conn, 16<<10)
			status, err := br.ReadString('\n')
			if err != nil || !strings.Contains(status, " 101 ") {
				conn.Close()
				return nil, fmt.Errorf("handshake: %q %v", status, err)
			}
			// Wait for the hello frame so the server's setup is complete.
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					conn.Close()
					return nil, err
				}
				if line == "\r\n" {
					break
				}
			}
			hdr := make([]byte, 2)
			if _, err := br.Read(hdr[:1]); err != nil || hdr[0] != 0x81 {
				conn.Close()
				return nil, fmt.Errorf("want a text frame, got %x %v", hdr[0], err)
			}
			_ = conn.SetDeadline(time.Time{})
			return conn, nil
		}
		// Warm up pools and the first handshake's one-off allocations.
		for i := 0; i < 50; i++ {
			c, err := handshake(signToken(e.svc.cfg.Secret, visitorClaims{Site: e.site.ID, Visitor: ingest.NewID(), Expires: time.Now().Add(time.Hour).Unix()}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		before, goroutinesBefore := goMemory(), runtime.NumGoroutine()
		conns := make([]net.Conn, 0, n)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for _, tok := range tokens {
			c, err := handshake(tok)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		poll(t, "every socket registered", 10*time.Second, func() bool {
			e.svc.hub.mu.RLock()
			defer e.svc.hub.mu.RUnlock()
			return len(e.svc.hub.visitors) >= n+50
		})
		// The reader writes the hello itself (TestIdleVisitorSocketRunsNoWriter),
		// so an idle socket keeps only its reader; the poll leaves time for
		// goroutines of the handshake to end.
		perConn := func() float64 { return float64(runtime.NumGoroutine()-goroutinesBefore) / n }
		poll(t, "one goroutine per idle socket (the writers ended)", 10*time.Second, func() bool { return perConn() <= 1.05 })
		after, goroutines := goMemory(), perConn()
		heap := (int64(after.heap) - int64(before.heap)) / n
		stacks := (int64(after.stacks) - int64(before.stacks)) / n
		t.Logf("Go heap in use %d + stacks %d bytes, %.2f goroutines per idle visitor connection (n=%d)", heap, stacks, goroutines, n)
		if heap > heapBound {
			t.Fatalf("idle connection holds %d bytes of Go heap, want under %d", heap, heapBound)
		}
		// Stacks are not bounded in bytes: the runtime sizes new stacks from
		// the average it has seen (and the race detector enlarges them), so
		// the count of goroutines, polled above, is what a change would move.
	})
}

// goMemory reads the Go heap in use and the goroutine stacks after
// collecting garbage.
func goMemory() struct{ heap, stacks uint64 } {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return struct{ heap, stacks uint64 }{m.HeapInuse, m.StackInuse}
}
