package chatsvc

import (
	"sync"
	"time"

	"github.com/fasthttp/websocket"
	cws "github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

// Socket buffer sizes. An idle connection holds only the read buffer; the
// write buffer comes from a pool for the duration of one write.
const (
	socketReadBuffer  = 512
	socketWriteBuffer = 4096
)

// localSocketHandler carries the per-request socket handler through
// gofiber/contrib/websocket, which copies the request's locals into the
// connection it hands over.
const localSocketHandler = "parley.socket.handler"

// newUpgrader builds the WebSocket upgrade handler shared by /ws/visitor
// and /ws/agent on gofiber/contrib/websocket. Origins are checked by
// visitorUpgrade and agentUpgrade with precise errors before the upgrade,
// so the upgrader itself admits every origin.
func (s *Service) newUpgrader() fiber.Handler {
	return cws.New(func(c *cws.Conn) {
		if handler, ok := c.Locals(localSocketHandler).(func(*websocket.Conn)); ok {
			handler(c.Conn)
		}
	}, cws.Config{
		HandshakeTimeout: 10 * time.Second,
		Origins:          []string{"*"},
		ReadBufferSize:   socketReadBuffer,
		WriteBufferSize:  socketWriteBuffer,
		WriteBufferPool:  &sync.Pool{},
		RecoverHandler: func(c *cws.Conn) {
			// recover must be called here, directly in the deferred function.
			if err := recover(); err != nil {
				s.socketPanicked(c.Conn, err)
			}
		},
	})
}

// isUpgrade reports whether the request asks for a WebSocket.
func isUpgrade(c *fiber.Ctx) bool {
	return cws.IsWebSocketUpgrade(c)
}

// upgrade switches the request to a WebSocket and runs handler on it in
// the connection's own goroutine once the 101 response is sent. handler
// must capture copies, never fiber.Ctx values (they are reused).
func (s *Service) upgrade(c *fiber.Ctx, handler func(conn *websocket.Conn)) error {
	c.Locals(localSocketHandler, handler)
	return s.upgrader(c)
}

// socketPanicked keeps a panic in one socket from killing the process.
func (s *Service) socketPanicked(conn *websocket.Conn, err any) {
	s.log.Error("panic in socket handler", "panic", err)
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "internal error"), time.Now().Add(time.Second))
	conn.Close()
}
