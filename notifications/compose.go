package notifications

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"sort"
	"strings"
	"time"
)

// outgoing is one mail before it is encoded.
type outgoing struct {
	From, To   mail.Address
	ReplyTo    string
	Subject    string
	MessageID  string
	References []string
	// Unsubscribe is the one-click unsubscribe URL (List-Unsubscribe).
	Unsubscribe string
	Headers     map[string]string
	Text, HTML  string
	Date        time.Time
}

// encode renders the mail as RFC 5322 with a text and an HTML part
// (multipart/alternative), quoted-printable, CRLF line ends.
func (m outgoing) encode() []byte {
	var b bytes.Buffer
	h := func(name, value string) {
		if value != "" {
			b.WriteString(name + ": " + value + "\r\n")
		}
	}
	boundary := "parley-" + randomHex(12)
	h("From", m.From.String())
	h("To", m.To.String())
	h("Reply-To", m.ReplyTo)
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", m.Date.Format(time.RFC1123Z))
	h("Message-ID", m.MessageID)
	if len(m.References) > 0 {
		h("In-Reply-To", m.References[len(m.References)-1])
		h("References", strings.Join(m.References, " "))
	}
	if m.Unsubscribe != "" {
		h("List-Unsubscribe", "<"+m.Unsubscribe+">")
		h("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
	}
	// Automatic mail: out-of-office answers should not come back into a
	// conversation (RFC 3834; X-Auto-Response-Suppress for Exchange).
	h("Auto-Submitted", "auto-generated")
	h("X-Auto-Response-Suppress", "All")
	keys := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h(k, m.Headers[k])
	}
	h("MIME-Version", "1.0")
	h("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		b.WriteString("--" + boundary + "\r\n")
		b.WriteString("Content-Type: " + part.typ + "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		w := quotedprintable.NewWriter(&b)
		w.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(part.body, "\r\n", "\n"), "\n", "\r\n")))
		w.Close()
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// threadID is the Message-ID every mail about a conversation refers to,
// so mail clients keep them in one thread.
func threadID(convID, domain string) string {
	return "<conversation." + convID + "@" + domain + ">"
}

// messageID is a fresh Message-ID.
func messageID(kind, domain string) string {
	return "<" + kind + "." + randomHex(10) + "@" + domain + ">"
}
