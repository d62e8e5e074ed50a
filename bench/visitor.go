package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// visitor is one simulated widget: a visitor session and its socket.
type visitor struct {
	ws     *wsConn
	wait   waiters
	convID string
}

// visitorClients hands out one HTTP client per source address, without
// keep-alive so that no idle HTTP connection holds a server descriptor.
type visitorClients struct {
	mu sync.Mutex
	m  map[string]*http.Client
}

func (vc *visitorClients) get(ip net.IP) *http.Client {
	vc.mu.Lock()
	defer vc.mu.Unlock()
	if vc.m == nil {
		vc.m = map[string]*http.Client{}
	}
	key := ip.String()
	c, ok := vc.m[key]
	if !ok {
		c = httpClientFrom(ip, 4)
		c.Transport.(*http.Transport).DisableKeepAlives = true
		vc.m[key] = c
	}
	return c
}

// openVisitor starts a visitor session for the site from source address
// ip, opens /ws/visitor and waits for hello. onFrame sees every frame the
// server sends (hello included) on the socket's reader goroutine.
func (e *env) openVisitor(ctx context.Context, clients *visitorClients, siteKey string, ip net.IP, bufSize int, onFrame func(v *visitor, data []byte, f frame, m chatMessage)) (*visitor, time.Duration, error) {
	a := &api{base: e.baseURL, hc: clients.get(ip), origin: benchOrigin}
	token, err := a.visitorSession(ctx, siteKey, "")
	if err != nil {
		return nil, 0, err
	}
	v := &visitor{}
	hello := v.wait.expect("hello")
	start := time.Now()
	ws, _, err := dialWS(ctx, wsURL(e.base, "/ws/visitor", url.Values{"token": {token}}), dialOptions{source: ip, origin: benchOrigin, bufSize: bufSize}, func(data []byte) {
		f, m, err := decodeFrame(data)
		if err != nil {
			return
		}
		if f.Type == "hello" {
			v.wait.deliver("hello", f)
		} else if f.Ref != "" {
			v.wait.deliver(f.Ref, f)
		}
		if onFrame != nil {
			onFrame(v, data, f, m)
		}
	})
	if err != nil {
		return nil, 0, err
	}
	v.ws = ws
	if _, err := await(ctx, hello, ws.done, 15*time.Second, "visitor hello", func(frame) bool { return true }); err != nil {
		ws.close()
		return nil, 0, err
	}
	v.wait.forget("hello")
	return v, time.Since(start), nil
}

// startConversation sends the visitor's first message and returns the
// conversation the server opened for it.
func (v *visitor) startConversation(ctx context.Context, clientID, text string) (string, error) {
	ch := v.wait.expect(clientID)
	defer v.wait.forget(clientID)
	if err := v.ws.send(sendFrame{Type: "send", Ref: clientID, ClientID: clientID, Text: text}); err != nil {
		return "", err
	}
	f, err := await(ctx, ch, v.ws.done, 15*time.Second, "first message", func(f frame) bool {
		return f.Type == "ack" || f.Type == "blocked"
	})
	if err != nil {
		return "", err
	}
	if f.Type == "blocked" {
		return "", fmt.Errorf("first message %q was blocked by moderation", text)
	}
	if f.ConversationID == "" {
		return "", fmt.Errorf("ack of the first message names no conversation")
	}
	v.convID = f.ConversationID
	return f.ConversationID, nil
}
