package chatsvc

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	fws "github.com/fasthttp/websocket"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

// TestBadInput sends every kind of bad frame on one socket: each gets its
// precise error, that socket stays usable and another visitor never notices.
func TestBadInput(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		tokA, _ := e.visitorSession("")
		tokB, _ := e.visitorSession("")
		a := e.visitorSocket(tokA)
		b := e.visitorSocket(tokB)

		cases := []struct {
			name, code, contains string
			frame                []byte
			binary               bool
		}{
			{"invalid JSON", CodeInvalidJSON, "not a valid JSON object", []byte(`{"type":"send",`), false},
			{"not an object", CodeInvalidJSON, "not a valid JSON object", []byte(`"hello"`), false},
			{"oversized", CodeFrameTooLarge, "frame of 70000 bytes exceeds 65536", append([]byte(`{"type":"send","text":"`), append(bytes.Repeat([]byte("a"), 70000-len(`{"type":"send","text":"`)-2), '"', '}')...), false},
			{"invalid UTF-8", CodeInvalidUTF8, "byte offset 25", []byte("{\"type\":\"send\",\"text\":\"ab\xff\xfe\"}"), false},
			{"unknown type", CodeUnknownType, `unknown frame type "shout"`, []byte(`{"type":"shout"}`), false},
			{"no type", CodeUnknownType, "no type", []byte(`{"text":"hi"}`), false},
			{"binary", CodeUnsupportedFrame, "binary frames", []byte{1, 2, 3}, true},
			{"missing client id", CodeBadRequest, "client_id is required", []byte(`{"type":"send","text":"hi"}`), false},
			{"too long", CodeMessageTooLong, "message of 4001 characters exceeds 4000", []byte(`{"type":"send","client_id":"x","text":"` + strings.Repeat("é", 4001) + `"}`), false},
			{"foreign conversation", CodeNotFound, "not found", []byte(`{"type":"resume","conversation_id":"0193a4c0-11aa-7bcd-8e00-111122223333"}`), false},
		}
		for i, c := range cases {
			mt := fws.TextMessage
			if c.binary {
				mt = fws.BinaryMessage
			}
			a.wmu.Lock()
			err := a.conn.WriteMessage(mt, c.frame)
			a.wmu.Unlock()
			if err != nil {
				t.Fatalf("%s: write: %v", c.name, err)
			}
			f := a.expect("error", nil)
			if f.str("code") != c.code || !strings.Contains(f.str("message"), c.contains) {
				t.Errorf("%s: got %s %q, want %s containing %q", c.name, f.str("code"), f.str("message"), c.code, c.contains)
			}
			// the same socket still works, and so does the other visitor
			ref := "p" + string(rune('a'+i))
			a.send(map[string]any{"type": "ping", "ref": ref})
			a.expect("pong", byRef(ref))
			id := "b-" + ref
			b.send(map[string]any{"type": "send", "client_id": id, "text": "still here"})
			b.expect("ack", byClient(id))
		}
		b.none("error", nil, 100*time.Millisecond)

		// beyond the hard read limit the socket is closed with 1009; B carries on
		a.wmu.Lock()
		a.conn.WriteMessage(fws.TextMessage, bytes.Repeat([]byte("x"), 2<<20))
		a.wmu.Unlock()
		err := a.closeErr(5 * time.Second)
		if !fws.IsCloseError(err, fws.CloseMessageTooBig) {
			t.Fatalf("oversized beyond the hard limit: close error %v, want 1009", err)
		}
		b.send(map[string]any{"type": "send", "client_id": "after-close", "text": "still here"})
		b.expect("ack", byClient("after-close"))
	})
}

// TestRefusedConnections checks the precise errors before any socket exists.
func TestRefusedConnections(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		tok, _ := e.visitorSession("")

		// wrong site key
		var er apiError
		doJSON(t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", map[string]any{"site_key": "pk_nope"}, 404, &er, map[string]string{"Origin": testOrigin})
		if er.Code != CodeUnknownSite || !strings.Contains(er.Message, `"pk_nope"`) {
			t.Fatalf("wrong site key: %+v", er)
		}
		// session from an origin the site does not allow
		doJSON(t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", map[string]any{"site_key": e.site.Key}, 403, &er, map[string]string{"Origin": "https://evil.example"})
		if er.Code != CodeOriginNotAllowed {
			t.Fatalf("session from evil origin: %+v", er)
		}

		h := http.Header{}
		h.Set("Origin", testOrigin)
		// forged token: valid shape, signature by another key
		forged := signToken(bytes.Repeat([]byte("z"), 32), visitorClaims{Site: e.site.ID, Visitor: "someone", Expires: time.Now().Add(time.Hour).Unix()})
		status, body := dialFail(t, e.ws+"/ws/visitor?token="+forged, h)
		if status != 401 || body.Code != CodeInvalidToken || !strings.Contains(body.Message, "bad signature") {
			t.Fatalf("forged token: %d %+v", status, body)
		}
		// tampered claims
		parts := strings.Split(tok, ".")
		status, body = dialFail(t, e.ws+"/ws/visitor?token="+parts[0]+"."+parts[1]+"x."+parts[2], h)
		if status != 401 || body.Code != CodeInvalidToken {
			t.Fatalf("tampered token: %d %+v", status, body)
		}
		// expired token
		expired := signToken(e.svc.cfg.Secret, visitorClaims{Site: e.site.ID, Visitor: "v", Expires: time.Now().Add(-time.Minute).Unix()})
		status, body = dialFail(t, e.ws+"/ws/visitor?token="+expired, h)
		if status != 401 || !strings.Contains(body.Message, "expired") {
			t.Fatalf("expired token: %d %+v", status, body)
		}
		// wrong Origin
		evil := http.Header{}
		evil.Set("Origin", "https://evil.example")
		status, body = dialFail(t, e.ws+"/ws/visitor?token="+tok, evil)
		if status != 403 || body.Code != CodeOriginNotAllowed || !strings.Contains(body.Message, "https://evil.example") {
			t.Fatalf("wrong origin: %d %+v", status, body)
		}
		// the agent socket: no session → 401; foreign origin → 403; visitor-only role → 403
		status, _ = dialFail(t, e.ws+"/ws/agent", http.Header{"Origin": {e.base}})
		if status != 401 {
			t.Fatalf("agent socket without session: %d", status)
		}
		mod := e.staff("Mo Derator", access.Moderator)
		ag := e.staff("Ann Agent", access.Agent)
		for _, c := range []struct {
			who    *staff
			origin string
			want   int
		}{{mod, e.base, 403}, {ag, "https://evil.example", 403}} {
			hh := http.Header{"Origin": {c.origin}}
			for _, ck := range c.who.jar.Cookies(mustURL(e.base)) {
				hh.Add("Cookie", ck.Name+"="+ck.Value)
			}
			if status, _ := dialFail(t, e.ws+"/ws/agent", hh); status != c.want {
				t.Fatalf("agent socket %s from %s: %d, want %d", c.who.user.Name, c.origin, status, c.want)
			}
		}
		// the server keeps serving good clients
		v := e.visitorSocket(tok)
		v.send(map[string]any{"type": "send", "client_id": "ok", "text": "hi"})
		v.expect("ack", byClient("ok"))

		// REST: staff endpoints refuse missing sessions, roles and CSRF tokens
		resp, err := http.Get(e.base + "/api/chat/conversations")
		if err != nil || resp.StatusCode != 401 {
			t.Fatalf("inbox without session: %v %v", resp.StatusCode, err)
		}
		mod.call("GET", "/api/chat/conversations", nil, 403, nil)
		ag.call("GET", "/api/chat/sites", nil, 403, nil)
		req, _ := http.NewRequest("POST", e.base+"/api/chat/conversations/x/status", strings.NewReader(`{"status":"resolved"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err = ag.http.Do(req)
		if err != nil || resp.StatusCode != 403 {
			t.Fatalf("POST without CSRF: %v %v", resp.StatusCode, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), access.CSRFHeader) {
			t.Fatalf("CSRF refusal does not name the header: %s", b)
		}
	})
}

// TestXSSStoredVerbatimServedSafely sends script payloads as a message, a
// name and a file name: stored byte for byte, JSON-escaped, the file
// served as a download.
func TestXSSStoredVerbatimServedSafely(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		const payload = `<script>alert("x")</script><img src=x onerror=alert(1)>`
		const fileName = `<svg onload=alert(1)>".txt`
		agent := e.staff("Grace", access.Agent)
		sock := agent.socket()
		tok, _ := e.visitorSession("")
		v := e.visitorSocket(tok)
		v.send(map[string]any{"type": "prechat", "ref": "p", "name": payload, "email": "x@example.com"})
		v.expect("ok", byRef("p"))
		status, body := upload(t, e.base+"/api/chat/visitor/attachments", fileName, "image/png", []byte("just text, not an image\n"),
			map[string]string{"Authorization": "Bearer " + tok, "Origin": testOrigin})
		if status != 201 {
			t.Fatalf("upload: %d %s", status, body)
		}
		var att AttachmentView
		json.Unmarshal(body, &att)
		if att.Name != fileName || !strings.HasPrefix(att.ContentType, "text/plain") {
			t.Fatalf("attachment = %+v (the client claimed image/png)", att)
		}
		v.send(map[string]any{"type": "send", "client_id": "x1", "text": payload, "attachments": []string{att.ID}})
		conv := v.expect("ack", byClient("x1")).str("conversation_id")
		sock.expect("conversation", func(f frame) bool { return f.obj("conversation").obj("assignee").str("id") == agent.user.ID })
		sock.send(map[string]any{"type": "subscribe", "ref": "s", "conversation_id": conv})
		got := sock.expect("messages", byRef("s")).list("messages")[0]
		if got.str("text") != payload || got.list("attachments")[0].str("name") != fileName {
			t.Fatalf("attachment name over the socket = %v", got)
		}

		raw := agent.call("GET", "/api/chat/conversations/"+conv+"/messages", nil, 200, nil)
		var msgs struct{ Messages []Message }
		json.Unmarshal(raw, &msgs)
		if len(msgs.Messages) != 1 || msgs.Messages[0].Text != payload || msgs.Messages[0].Attachments[0].Name != fileName {
			t.Fatalf("stored = %+v", msgs.Messages)
		}
		detail := agent.call("GET", "/api/chat/conversations/"+conv, nil, 200, nil)
		for _, r := range [][]byte{raw, detail} {
			if bytes.Contains(r, []byte("<script>")) || bytes.Contains(r, []byte("<svg")) || bytes.Contains(r, []byte("<img")) {
				t.Fatalf("JSON carries raw markup: %s", r)
			}
		}
		var d conversationDetail
		json.Unmarshal(detail, &d)
		if d.Visitor.Name != payload || d.Conversation.Visitor.Name != payload {
			t.Fatalf("visitor name = %q / %q", d.Visitor.Name, d.Conversation.Visitor.Name)
		}

		resp, err := http.Get(e.base + att.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if h.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment;") ||
			h.Get("X-Content-Type-Options") != "nosniff" || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") ||
			strings.Contains(h.Get("Content-Disposition"), "<svg") {
			t.Fatalf("file headers: %v", h)
		}

		// an executable-looking upload is refused by its sniffed type
		status, body = upload(t, e.base+"/api/chat/visitor/attachments", "page.html", "image/png", []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"),
			map[string]string{"Authorization": "Bearer " + tok, "Origin": testOrigin})
		if status != 415 || !strings.Contains(string(body), "text/html") {
			t.Fatalf("html upload: %d %s", status, body)
		}
		// too large
		e.svc.cfg.Limits.MaxAttachmentBytes = 1000
		status, body = upload(t, e.base+"/api/chat/visitor/attachments", "big.txt", "text/plain", bytes.Repeat([]byte("a"), 2000),
			map[string]string{"Authorization": "Bearer " + tok, "Origin": testOrigin})
		if status != 413 {
			t.Fatalf("oversized upload: %d %s", status, body)
		}
	})
}
