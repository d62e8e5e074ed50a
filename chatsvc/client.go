package chatsvc

import (
	"sync"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/parleychat/parley/access"
)

const (
	writeWait = 10 * time.Second
	// closeGrace is how long a socket that sent its close frame waits for
	// the peer's answer before its read loop ends.
	closeGrace = time.Second
	pingEvery  = 25 * time.Second
	readIdle   = 60 * time.Second
	closeQueue = 1013 // try again later: the client could not keep up
	// writerLinger is how long an idle writer waits for the next frame
	// before it ends: a busy socket keeps one writer (whose stack has
	// already grown) instead of starting one per frame.
	writerLinger = 2 * time.Second
)

// client is one WebSocket connection. Its reader (the handler goroutine)
// owns the read side. The write side is owned by a writer goroutine that
// exists only while there is something to write: enqueue and close start
// one when none runs, the ping timer's goroutine becomes one, and it ends
// when the queue has been empty for writerLinger (at once after a pass
// that carried only a ping or pongs). Before the client is registered
// anywhere, its first frame may be written by the reader itself.
// An idle connection therefore holds one goroutine, no queue and no write
// buffer (see docs/benchmarks.md for the measured bytes per connection).
type client struct {
	s    *Service
	conn *websocket.Conn

	// mu guards the outbound state below.
	mu sync.Mutex
	// queue holds frames waiting for the writer: nil while idle, at most
	// Limits.SendQueue frames.
	queue     [][]byte
	pingDue   bool
	pongs     []string // pongs owed to the peer's pings, written by the writer
	writing   bool     // a writer goroutine runs
	closing   bool     // close asked: nothing more is queued
	finished  bool     // the socket is closed; no writer will start again
	held      bool     // frames wait behind the hello still being built (holdForHello)
	closeCode int
	closeText string
	pinger    *time.Timer
	writers   sync.WaitGroup
	// wake tells a lingering writer that there is work (capacity 1). It
	// is made with the first writer and never changes after that.
	wake chan struct{}

	ip     string
	origin string

	// visitor sockets
	site      *Site
	visitorID string
	lang      string // the language the visitor's widget speaks

	// agent sockets
	user access.User
	// session is the id of the staff session the socket was opened with.
	session string
	// subs and scope are guarded by hub.mu; subs is allocated on the
	// first subscription.
	subs  map[string]bool
	scope string

	// typing limits typing frames; made on the first one (reader only).
	typing *bucket
	// budget limits every frame type; receipts coalesces delivered
	// receipts. Both belong to the reader goroutine.
	budget   *frameBudget
	receipts receiptMarks
}

func newClient(s *Service, conn *websocket.Conn) *client {
	return &client{s: s, conn: conn, scope: "mine"}
}

// enqueue queues a frame; a client whose queue is full is closed (1013)
// so that it can never hold up anyone else.
func (c *client) enqueue(b []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if len(c.queue) >= c.s.cfg.Limits.SendQueue {
		c.mu.Unlock()
		c.s.metrics.slowClients.Inc()
		c.close(closeQueue, "too many frames queued; reconnect and resume")
		return
	}
	c.queue = append(c.queue, b)
	if !c.held {
		c.startWriterLocked()
	}
	c.mu.Unlock()
}

// holdForHello keeps frames queued until sendHello: a socket must be
// registered before its hello is built (so nothing happening meanwhile is
// missed), yet the hello must be its first frame.
func (c *client) holdForHello() {
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// sendHello queues the hello ahead of what was held and starts writing.
func (c *client) sendHello(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	if c.closing {
		c.startWriterLocked()
		return
	}
	c.queue = append([][]byte{b}, c.queue...)
	c.startWriterLocked()
}

// close asks the writer to flush what is queued, send a close frame (when
// code is not 0) and end the socket.
func (c *client) close(code int, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing, c.closeCode, c.closeText = true, code, text
	c.startWriterLocked()
}

func (c *client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// startWriterLocked starts a writer unless one runs (then it wakes it)
// or the socket is done.
func (c *client) startWriterLocked() {
	if c.claimWriterLocked() {
		go c.writeLoop()
	}
}

// claimWriterLocked makes the caller the socket's writer when none runs
// and the socket is not done: it then returns true and the caller must
// run writeLoop. Otherwise it wakes the running writer, if any. The wake
// channel is made with the first writer: most idle sockets never need one.
func (c *client) claimWriterLocked() bool {
	if c.finished {
		return false
	}
	if c.writing {
		select {
		case c.wake <- struct{}{}:
		default:
		}
		return false
	}
	c.writing = true
	c.writers.Add(1)
	if c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	return true
}

// allowTyping takes a token from the socket's typing bucket, made on the
// first typing frame. Only the reader goroutine calls it.
func (c *client) allowTyping(now time.Time) bool {
	if c.typing == nil {
		c.typing = newBucket(4, 4)
	}
	ok, _ := c.typing.allow(now)
	return ok
}

// pingTick runs on the ping timer: it asks for a ping and re-arms the
// timer. The timer already runs it on a goroutine of its own, so when no
// writer runs, that goroutine becomes the writer rather than starting
// another: an idle socket's ping costs one short-lived goroutine, not two.
func (c *client) pingTick() {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.pingDue = true
	c.pinger.Reset(pingEvery)
	writer := c.claimWriterLocked()
	c.mu.Unlock()
	if writer {
		c.writeLoop()
	}
}

// writeLoop owns every write to the socket while it runs. It takes the
// whole queue at once, writes it, and exits when nothing came for
// writerLinger after frames (at once after only a ping or pongs); on close
// it flushes the queue, says goodbye and closes the socket.
func (c *client) writeLoop() {
	defer c.writers.Done()
	var spare [][]byte
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	idle := false // the previous pass found nothing and the linger ran out
	for {
		c.mu.Lock()
		frames, ping, closing, pongs := c.queue, c.pingDue, c.closing, c.pongs
		if len(frames) == 0 && !ping && len(pongs) == 0 {
			if !closing && !idle {
				c.mu.Unlock()
				if linger == nil {
					linger = time.NewTimer(writerLinger)
				} else {
					linger.Reset(writerLinger)
				}
				select {
				case <-c.wake:
					linger.Stop()
				case <-linger.C:
					idle = true
				}
				continue
			}
			c.queue = nil
			if !closing {
				c.writing = false
				c.mu.Unlock()
				return
			}
			c.finished = true
			code, text := c.closeCode, c.closeText
			c.mu.Unlock()
			if code != 0 {
				_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
			}
			c.endRead(closeGrace) // time for the peer's close answer
			c.conn.Close()
			return
		}
		c.queue, c.pingDue, c.pongs = spare, false, nil
		c.mu.Unlock()
		// Only frames make the writer linger: a pass that carried just a
		// ping or pongs (an idle socket's keep-alive) ends at once when
		// nothing else is queued.
		idle = len(frames) == 0

		for _, p := range pongs {
			if err := c.conn.WriteControl(websocket.PongMessage, []byte(p), time.Now().Add(writeWait)); err != nil {
				c.abort()
				return
			}
		}
		if err := c.writeFrames(frames); err != nil {
			c.abort()
			return
		}
		clear(frames)
		spare = frames[:0]
		if ping {
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.abort()
				return
			}
		}
	}
}

// writeFrames writes queued text frames: one the library's way, several
// framed here into one buffer and written with one system call. Only the
// writer goroutine writes to the socket (pongs are queued to it too, see
// serve), so bypassing the library's writer here cannot interleave frames.
func (c *client) writeFrames(frames [][]byte) error {
	if len(frames) == 0 {
		return nil
	}
	deadline := time.Now().Add(writeWait)
	_ = c.conn.SetWriteDeadline(deadline) // the library applies it on its own writes
	c.s.metrics.socketWrites.Inc()
	c.s.metrics.socketFrames.Add(float64(len(frames)))
	if len(frames) == 1 {
		return c.conn.WriteMessage(websocket.TextMessage, frames[0])
	}
	bp := frameBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, f := range frames {
		buf = appendTextFrame(buf, f)
	}
	// The connection still holds the deadline of the library's last
	// write, long past on a socket that was quiet: set this write's own.
	if err := c.conn.NetConn().SetWriteDeadline(deadline); err != nil {
		return err
	}
	_, err := c.conn.NetConn().Write(buf)
	if cap(buf) <= maxPooledFrameBuf {
		*bp = buf[:0]
		frameBufs.Put(bp)
	}
	return err
}

// frameBufs holds buffers for coalesced writes; larger ones are let go.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxPooledFrameBuf = 256 << 10

// appendTextFrame appends one unmasked, unfragmented text frame (what a
// server sends, RFC 6455 section 5.2) carrying payload.
func appendTextFrame(buf, payload []byte) []byte {
	const finText = 0x80 | websocket.TextMessage
	n := len(payload)
	switch {
	case n < 126:
		buf = append(buf, finText, byte(n))
	case n <= 0xffff:
		buf = append(buf, finText, 126, byte(n>>8), byte(n))
	default:
		buf = append(buf, finText, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(buf, payload...)
}

// abort ends the socket after a failed write: queued frames are dropped
// and no close frame is sent (the peer is gone or stuck).
func (c *client) abort() {
	c.mu.Lock()
	c.closing, c.finished, c.queue = true, true, nil
	c.mu.Unlock()
	c.endRead(0)
	c.conn.Close()
}

// endRead makes the read loop end after d. Closing the connection is not
// enough: the server closes a hijacked connection only when its handler
// returns (fasthttp), and the handler returns when the read loop does;
// until then the peer would see an open socket that never writes.
func (c *client) endRead(d time.Duration) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
}

// serve runs the read loop with handle for each frame until the socket
// ends, then stops the writer and waits for it.
func (c *client) serve(handle func(data []byte, binary bool)) {
	c.mu.Lock()
	c.pinger = time.AfterFunc(pingEvery, c.pingTick)
	c.mu.Unlock()
	c.conn.SetReadLimit(c.s.cfg.Limits.HardFrameBytes)
	_ = c.conn.SetReadDeadline(time.Now().Add(readIdle))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(readIdle))
	})
	// The library would answer pings and closes from this (the reader's)
	// goroutine; the writer goroutine owns every write, so they go to it.
	c.conn.SetPingHandler(func(data string) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.closing && len(c.pongs) < 4 {
			c.pongs = append(c.pongs, data)
			c.startWriterLocked()
		}
		return nil
	})
	peerClosed := false
	c.conn.SetCloseHandler(func(int, string) error {
		peerClosed = true
		return nil
	})
	for {
		mt, data, err := c.conn.ReadMessage()
		if err != nil {
			// The library already answered a close or an oversized frame (1009).
			break
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(readIdle))
		handle(data, mt == websocket.BinaryMessage)
		if c.isClosing() {
			break
		}
	}
	if peerClosed {
		c.close(websocket.CloseNormalClosure, "") // the closing handshake's answer
	}
	c.close(0, "")
	c.mu.Lock()
	c.pinger.Stop()
	c.mu.Unlock()
	c.writers.Wait()
}

func (c *client) fail(ref string, e *frameError) {
	c.s.metrics.frameErrors.WithLabelValues(e.Code).Inc()
	c.enqueue(errorBytes(ref, e))
}
