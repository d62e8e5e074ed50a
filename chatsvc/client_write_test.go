package chatsvc

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/parleychat/parley/access"
	"net/http"
	"net/http/httptest"
)

// Frames queued for one socket while its writer is busy go out in one
// write, framed by hand: every size class of the length field arrives
// intact and in order.
func TestQueuedFramesGoOutInOneWrite(t *testing.T) {
	e := newEnv(t, "sqlite")
	ws, cl := graceClient(t, e)
	sizes := []int{3, 125, 126, 500, 65535, 65536, 200000, 40}
	frames := make([][]byte, len(sizes))
	for i, n := range sizes {
		pad := strings.Repeat("x", max(0, n-len(fmt.Sprintf(`{"type":"probe","n":%d,"pad":""}`, i))))
		frames[i] = []byte(fmt.Sprintf(`{"type":"probe","n":%d,"pad":"%s"}`, i, pad))
	}
	writesBefore := counterValue(t, e.svc.metrics.socketWrites)
	// Queue all but the last while no writer runs, then the last starts one.
	poll(t, "grace's writer idle", 10*time.Second, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return !cl.writing
	})
	cl.mu.Lock()
	cl.queue = append(cl.queue, frames[:len(frames)-1]...)
	cl.mu.Unlock()
	cl.enqueue(frames[len(frames)-1])
	for i := range frames {
		f := ws.expect("probe", nil)
		if f.num("n") != int64(i) || len(f.str("pad")) != len(frames[i])-len(fmt.Sprintf(`{"type":"probe","n":%d,"pad":""}`, i)) {
			t.Fatalf("frame %d arrived as n=%d with %d bytes of padding", i, f.num("n"), len(f.str("pad")))
		}
	}
	if got := counterValue(t, e.svc.metrics.socketWrites) - writesBefore; got != 1 {
		t.Fatalf("%d frames took %v writes, want 1", len(frames), got)
	}
	// The socket still works both ways afterwards.
	ws.send(map[string]any{"type": "ping", "ref": "p"})
	ws.expect("pong", byRef("p"))
}

// graceClient opens an agent socket and returns it with its server side.
func graceClient(t *testing.T, e *env) (*wsClient, *client) {
	t.Helper()
	ws := e.staff("Grace", access.Agent).socket()
	var cl *client
	poll(t, "grace's socket in the hub", 5*time.Second, func() bool {
		e.svc.hub.mu.RLock()
		defer e.svc.hub.mu.RUnlock()
		for c := range e.svc.hub.agents {
			cl = c
		}
		return cl != nil
	})
	return ws, cl
}

// A coalesced write on a socket that was quiet longer than writeWait sets
// its own deadline: the connection still holds the long-past deadline of
// the library's last write, and writing under it failed and dropped the
// socket's frames.
func TestCoalescedWriteAfterQuietSocket(t *testing.T) {
	e := newEnv(t, "sqlite")
	ws, cl := graceClient(t, e)
	poll(t, "grace's writer idle", 10*time.Second, func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return !cl.writing
	})
	// What writeWait of quiet leaves behind, without waiting for it.
	if err := cl.conn.NetConn().SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	cl.mu.Lock()
	cl.queue = append(cl.queue, []byte(`{"type":"probe","n":0}`))
	cl.mu.Unlock()
	cl.enqueue([]byte(`{"type":"probe","n":1}`))
	for i := range 2 {
		if f := ws.expect("probe", nil); f.num("n") != int64(i) {
			t.Fatalf("probe %d arrived as %v", i, f)
		}
	}
	ws.send(map[string]any{"type": "ping", "ref": "p"})
	ws.expect("pong", byRef("p"))
}

// A socket whose write failed ends for the peer too, at once: closing a
// hijacked connection does nothing until the handler's read loop returns,
// and the peer kept a socket that silently dropped every frame.
func TestAbortedSocketEndsForThePeer(t *testing.T) {
	e := newEnv(t, "sqlite")
	ws, cl := graceClient(t, e)
	cl.abort()
	select {
	case <-ws.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the peer still has the socket 5 s after the server aborted it")
	}
}

// BenchmarkSocketWrite measures the socket write path for a burst of
// frames queued for one socket: one write per frame (the library's path)
// against the coalesced write.
func BenchmarkSocketWrite(b *testing.B) {
	for _, burst := range []int{1, 8, 64} {
		for _, mode := range []string{"per-frame", "coalesced"} {
			b.Run(fmt.Sprintf("%s/burst=%d", mode, burst), func(b *testing.B) {
				conn := benchSocket(b)
				m, err := newMetrics(nil)
				if err != nil {
					b.Fatal(err)
				}
				c := &client{s: &Service{metrics: m}, conn: conn}
				frame := []byte(`{"type":"message","message":{"id":"0193a1c4-7000-7000-8000-00000000c0de","conversation_id":"0193a1c4-7000-7000-8000-00000000c0df","seq":42,"author":{"role":"visitor","id":"v"},"kind":"text","text":"Where is my parcel? It was due on Monday.","status":"visible","created_at":"2026-12-06T20:00:00.000Z"}}`)
				frames := make([][]byte, burst)
				for i := range frames {
					frames[i] = frame
				}
				b.SetBytes(int64(len(frame) * burst))
				b.ResetTimer()
				for range b.N {
					if mode == "coalesced" {
						if err := c.writeFrames(frames); err != nil {
							b.Fatal(err)
						}
						continue
					}
					for _, f := range frames {
						if err := conn.WriteMessage(websocket.TextMessage, f); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}

// benchSocket is the server side of a WebSocket whose client discards
// what it reads.
func benchSocket(b *testing.B) *websocket.Conn {
	b.Helper()
	got := make(chan *websocket.Conn, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			b.Error(err)
			return
		}
		got <- conn
	}))
	b.Cleanup(srv.Close)
	cli, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	go func() {
		for {
			if _, _, err := cli.NextReader(); err != nil {
				return
			}
		}
	}()
	conn := <-got
	b.Cleanup(func() { conn.Close() })
	return conn
}

// An idle visitor socket runs no writer goroutine: its hello is written by
// the socket's own goroutine, and a keep-alive ping is written by the ping
// timer's goroutine, which ends at once instead of lingering for frames.
// It allocates nothing it has not used yet either.
// Each lingering writer cost a goroutine and, freed among the readers'
// stacks, kept stack memory from being reused (docs/benchmarks.md).
func TestIdleVisitorSocketRunsNoWriter(t *testing.T) {
	e := newEnv(t, "sqlite")
	token, visitorID := e.visitorSession("")
	ws := e.visitorSocket(token)
	var cl *client
	poll(t, "the visitor's socket in the hub", 5*time.Second, func() bool {
		e.svc.hub.mu.RLock()
		defer e.svc.hub.mu.RUnlock()
		for _, c := range e.svc.hub.visitors[visitorID] {
			cl = c
		}
		return cl != nil
	})
	writing := func() bool {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		return cl.writing
	}
	if writing() {
		t.Fatal("a writer goroutine runs after the hello was sent")
	}
	// Nor does it hold what only a busy socket needs: the writer's wake
	// channel, the typing bucket, the frame budget's buckets.
	cl.mu.Lock()
	made := map[string]bool{"wake channel": cl.wake != nil, "typing bucket": cl.typing != nil, "frame buckets": cl.budget.buckets != nil}
	cl.mu.Unlock()
	for what, ok := range made {
		if ok {
			t.Errorf("an idle visitor socket already holds its %s", what)
		}
	}
	cl.pingTick() // what the ping timer does every pingEvery
	cl.mu.Lock()
	due := cl.pingDue
	cl.mu.Unlock()
	if due || writing() {
		t.Fatalf("after a keep-alive ping: ping still due %v, a writer still runs %v", due, writing())
	}
	// A frame makes a writer again. (The test sends none: the budget and
	// typing bucket it read above belong to the socket's reader.)
	cl.enqueue([]byte(`{"type":"probe"}`))
	ws.expect("probe", nil)
}
