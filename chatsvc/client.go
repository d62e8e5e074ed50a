package chatsvc

import (
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"

	"github.com/parleychat/parley/access"
)

const (
	writeWait  = 10 * time.Second
	pingEvery  = 25 * time.Second
	readIdle   = 60 * time.Second
	closeQueue = 1013 // try again later: the client could not keep up
)

// client is one WebSocket connection. Only its reader (the handler
// goroutine) and its writer goroutine touch the socket; everyone else
// enqueues frames or asks it to close.
type client struct {
	s         *Service
	conn      *websocket.Conn
	send      chan []byte
	done      chan struct{}
	closeOnce sync.Once
	closeCode int
	closeText string
	ip        string
	origin    string

	// visitor sockets
	site      *Site
	visitorID string

	// agent sockets
	user access.User
	// subs and scope are guarded by hub.mu.
	subs  map[string]bool
	scope string

	typing *bucket
}

func newClient(s *Service, conn *websocket.Conn) *client {
	return &client{
		s: s, conn: conn,
		send:   make(chan []byte, s.cfg.Limits.SendQueue),
		done:   make(chan struct{}),
		subs:   map[string]bool{},
		scope:  "mine",
		typing: newBucket(4, 4),
	}
}

// enqueue queues a frame; a client whose queue is full is closed (1013)
// so that it can never hold up anyone else.
func (c *client) enqueue(b []byte) {
	select {
	case <-c.done:
		return
	default:
	}
	select {
	case c.send <- b:
	default:
		c.s.metrics.slowClients.Inc()
		c.close(closeQueue, "too many frames queued; reconnect and resume")
	}
}

// close asks the writer goroutine to send a close frame and end the socket.
func (c *client) close(code int, text string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		close(c.done)
	})
}

// writeLoop owns every write to the socket until close.
func (c *client) writeLoop() {
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case b := <-c.send:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				c.close(0, "")
				c.conn.Close()
				return
			}
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.close(0, "")
				c.conn.Close()
				return
			}
		case <-c.done:
			// Flush what is already queued, then say goodbye.
			for flushed := false; !flushed; {
				select {
				case b := <-c.send:
					_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
					if c.conn.WriteMessage(websocket.TextMessage, b) != nil {
						flushed = true
					}
				default:
					flushed = true
				}
			}
			if c.closeCode != 0 {
				_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText), time.Now().Add(time.Second))
			}
			c.conn.Close()
			return
		}
	}
}

// serve runs the read loop with handle for each frame until the socket
// ends, then stops the writer and waits for it.
func (c *client) serve(handle func(data []byte, binary bool)) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop()
	}()
	c.conn.SetReadLimit(c.s.cfg.Limits.HardFrameBytes)
	_ = c.conn.SetReadDeadline(time.Now().Add(readIdle))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(readIdle))
	})
	for {
		mt, data, err := c.conn.ReadMessage()
		if err != nil {
			// The library already answered a close or an oversized frame (1009).
			c.close(0, "")
			break
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(readIdle))
		handle(data, mt == websocket.BinaryMessage)
		select {
		case <-c.done:
		default:
			continue
		}
		break
	}
	wg.Wait()
}

func (c *client) fail(ref string, e *frameError) {
	c.s.metrics.frameErrors.WithLabelValues(e.Code).Inc()
	c.enqueue(errorBytes(ref, e))
}
