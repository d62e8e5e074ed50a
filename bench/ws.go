package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fasthttp/websocket"
)

// frame is the part of a server frame (docs/protocol.md) the bench reads.
// "message" is an object in message frames and a string in error frames,
// so it stays raw until the type is known.
type frame struct {
	Type           string          `json:"type"`
	Ref            string          `json:"ref"`
	Code           string          `json:"code"`
	ClientID       string          `json:"client_id"`
	ConversationID string          `json:"conversation_id"`
	MessageID      string          `json:"message_id"`
	Seq            int64           `json:"seq"`
	Duplicate      bool            `json:"duplicate"`
	Complete       bool            `json:"complete"`
	Message        json.RawMessage `json:"message"`
}

// chatMessage is the part of a message object the bench reads.
type chatMessage struct {
	ID             string `json:"id"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	ClientID       string `json:"client_id"`
	Author         struct {
		Role string `json:"role"`
		ID   string `json:"id"`
	} `json:"author"`
	Kind string `json:"kind"`
}

// decodeFrame parses one server frame; a message frame's message is
// decoded too.
func decodeFrame(data []byte) (frame, chatMessage, error) {
	var f frame
	var m chatMessage
	if err := json.Unmarshal(data, &f); err != nil {
		return f, m, fmt.Errorf("server frame is not JSON: %w", err)
	}
	if f.Type == "message" && len(f.Message) > 0 {
		if err := json.Unmarshal(f.Message, &m); err != nil {
			return f, m, fmt.Errorf("message frame: %w", err)
		}
	}
	return f, m, nil
}

// errorText is the message of an error frame.
func (f frame) errorText() string {
	var s string
	if json.Unmarshal(f.Message, &s) != nil {
		return string(f.Message)
	}
	return s
}

// sendFrame is a client send frame.
type sendFrame struct {
	Type           string `json:"type"`
	Ref            string `json:"ref,omitempty"`
	ClientID       string `json:"client_id"`
	ConversationID string `json:"conversation_id,omitempty"`
	Text           string `json:"text"`
}

// wsConn is one client socket: one reader goroutine (owned by the conn,
// stopped by close) hands every frame to onFrame; writes are serialised.
type wsConn struct {
	c       *websocket.Conn
	wmu     sync.Mutex
	done    chan struct{}
	readErr error // set before done closes
}

// dialOptions are what a socket needs besides its URL.
type dialOptions struct {
	source  net.IP // loopback source address
	origin  string
	cookie  string
	bufSize int // read and write buffer size; small for idle sockets
}

// dialWS opens a socket and starts its reader. onFrame runs on the reader
// goroutine and must not block for long.
func dialWS(ctx context.Context, rawURL string, o dialOptions, onFrame func(data []byte)) (*wsConn, *http.Response, error) {
	d := websocket.Dialer{
		NetDialContext:   dialerFrom(o.source),
		HandshakeTimeout: 15 * time.Second,
		ReadBufferSize:   o.bufSize,
		WriteBufferSize:  o.bufSize,
	}
	h := http.Header{}
	if o.origin != "" {
		h.Set("Origin", o.origin)
	}
	if o.cookie != "" {
		h.Set("Cookie", o.cookie)
	}
	c, res, err := d.DialContext(ctx, rawURL, h)
	if err != nil {
		if res != nil {
			return nil, res, fmt.Errorf("dial %s: %w (status %d)", redactToken(rawURL), err, res.StatusCode)
		}
		return nil, nil, fmt.Errorf("dial %s: %w", redactToken(rawURL), err)
	}
	w := &wsConn{c: c, done: make(chan struct{})}
	go w.read(onFrame)
	return w, res, nil
}

func (w *wsConn) read(onFrame func([]byte)) {
	defer close(w.done)
	for {
		kind, data, err := w.c.ReadMessage()
		if err != nil {
			w.readErr = err
			return
		}
		if kind == websocket.TextMessage && onFrame != nil {
			onFrame(data)
		}
	}
}

// send writes one JSON frame.
func (w *wsConn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	_ = w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := w.c.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// closed reports whether the reader has stopped (the server closed the
// socket or the connection broke).
func (w *wsConn) closed() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// close sends a normal close frame, closes the connection and waits for
// the reader to stop.
func (w *wsConn) close() {
	w.wmu.Lock()
	_ = w.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bench done"), time.Now().Add(time.Second))
	w.wmu.Unlock()
	_ = w.c.Close()
	<-w.done
}

// closeError describes why the reader stopped, for reports.
func (w *wsConn) closeError() string {
	var ce *websocket.CloseError
	if errors.As(w.readErr, &ce) {
		return fmt.Sprintf("closed by server with code %d %s", ce.Code, ce.Text)
	}
	if w.readErr != nil {
		return w.readErr.Error()
	}
	return ""
}

// wsURL turns the server's http URL into a ws URL for path.
func wsURL(base *url.URL, path string, query url.Values) string {
	u := *base
	u.Scheme = "ws"
	u.Path = path
	u.RawQuery = query.Encode()
	return u.String()
}

// redactToken keeps visitor tokens out of error messages.
func redactToken(raw string) string {
	if i := strings.Index(raw, "token="); i >= 0 {
		return raw[:i] + "token=REDACTED"
	}
	return raw
}
