package notifications

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
	"golang.org/x/text/encoding/htmlindex"
)

// maxInbound bounds an answer by email; attachments are not kept, so
// large mail is refused rather than read.
const maxInbound = 10 << 20

// listen opens the inbound SMTP listener for visitors' answers.
func (s *Service) listen() error {
	ln, err := net.Listen("tcp", s.cfg.SMTP.Listen)
	if err != nil {
		return fmt.Errorf("smtp-listen %s: %w", s.cfg.SMTP.Listen, err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &inboundSession{s: s}, nil }))
	srv.Domain = s.cfg.SMTP.ReplyDomain
	srv.MaxMessageBytes = maxInbound
	srv.MaxRecipients = 10
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.ErrorLog = smtpLog{s}
	s.inbound, s.inLn = srv, ln
	s.log.Info("inbound mail listener", "addr", ln.Addr().String(), "domain", srv.Domain)
	return nil
}

type smtpLog struct{ s *Service }

func (l smtpLog) Printf(format string, v ...any) {
	l.s.log.Warn("inbound smtp: " + fmt.Sprintf(format, v...))
}
func (l smtpLog) Println(v ...any) { l.s.log.Warn("inbound smtp: " + fmt.Sprint(v...)) }

// inboundSession receives one connection's mail: only to reply addresses
// of conversations, only from the conversation's visitor.
type inboundSession struct {
	s     *Service
	from  string
	convs []string
}

func smtpErr(code int, enhanced smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enhanced, Message: msg}
}

func (in *inboundSession) Reset()        { in.from, in.convs = "", nil }
func (in *inboundSession) Logout() error { return nil }

func (in *inboundSession) Mail(from string, _ *smtp.MailOptions) error {
	in.from = from
	return nil
}

func (in *inboundSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	local, domain, ok := strings.Cut(to, "@")
	if !ok || !strings.EqualFold(domain, in.s.cfg.SMTP.ReplyDomain) {
		return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no such mailbox here")
	}
	conv, ok := in.s.tokens.replyConversation(local)
	if !ok {
		return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "no such mailbox here")
	}
	in.convs = append(in.convs, conv)
	return nil
}

func (in *inboundSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(io.LimitReader(r, maxInbound+1))
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "the message does not parse: "+err.Error())
	}
	if auto := msg.Header.Get("Auto-Submitted"); auto != "" && !strings.EqualFold(auto, "no") {
		in.s.log.Info("inbound mail dropped: automatic answer", "auto_submitted", auto)
		return nil // an out-of-office answer is accepted and not posted
	}
	sender := in.from
	if a, err := mail.ParseAddress(msg.Header.Get("From")); err == nil {
		sender = a.Address
	}
	text, err := bodyText(msg)
	if err != nil {
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, err.Error())
	}
	text = stripQuoted(text)
	if text == "" {
		return smtpErr(554, smtp.EnhancedCode{5, 6, 0}, "the message has no text above the quoted mail")
	}
	id := msg.Header.Get("Message-ID")
	if id == "" {
		id = string(raw)
	}
	sum := sha256.Sum256([]byte(id))
	clientID := "mail-" + hex.EncodeToString(sum[:12])
	for _, conv := range in.convs {
		if err := in.s.postAnswer(conv, sender, clientID, text); err != nil {
			return err
		}
	}
	return nil
}

// postAnswer posts an emailed answer into its conversation when it comes
// from the conversation's visitor.
func (s *Service) postAnswer(convID, sender, clientID, text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	contact, err := s.chat.Contact(ctx, convID)
	if s.chat.IsNotFound(err) {
		return smtpErr(550, smtp.EnhancedCode{5, 1, 1}, "this conversation no longer exists")
	}
	if err != nil {
		s.log.Warn("inbound mail: read conversation", "conversation", convID, "err", err)
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "try again later")
	}
	if !strings.EqualFold(strings.TrimSpace(sender), strings.TrimSpace(contact.Email)) {
		s.log.Warn("inbound mail refused: sender is not the visitor", "conversation", convID)
		return smtpErr(550, smtp.EnhancedCode{5, 7, 1}, "the sender is not the visitor of this conversation; answer from the address the mail went to")
	}
	if err := s.chat.PostVisitorMessage(ctx, convID, clientID, text); err != nil {
		if s.chat.IsRefusal(err) {
			return smtpErr(550, smtp.EnhancedCode{5, 7, 0}, "not posted: "+err.Error())
		}
		s.log.Warn("inbound mail: post", "conversation", convID, "err", err)
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "try again later")
	}
	s.log.Info("answer by email posted", "conversation", convID)
	return nil
}

// bodyText returns the plain text of a message: its text/plain part, or
// its HTML part without markup, decoded to UTF-8.
func bodyText(msg *mail.Message) (string, error) {
	text, html, err := walkPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, 0)
	if err != nil {
		return "", err
	}
	if text == "" && html != "" {
		text = htmlToText(html)
	}
	return text, nil
}

func walkPart(contentType, encoding string, body io.Reader, depth int) (text, html string, err error) {
	if depth > 5 {
		return "", "", errors.New("the message nests parts too deep")
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mediaType, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return text, html, nil
			}
			if err != nil {
				return "", "", fmt.Errorf("read multipart: %w", err)
			}
			t, h, err := walkPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, depth+1)
			if err != nil {
				return "", "", err
			}
			if text == "" {
				text = t
			}
			if html == "" {
				html = h
			}
		}
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return "", "", nil // attachments are not kept
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64Reader(body)
	}
	decoded := body
	if cs := params["charset"]; cs != "" {
		if enc, err := htmlindex.Get(cs); err == nil {
			decoded = enc.NewDecoder().Reader(body)
		} // an unknown charset is read as it is
	}
	b, err := io.ReadAll(io.LimitReader(decoded, maxInbound))
	if err != nil {
		return "", "", fmt.Errorf("decode %s part: %w", mediaType, err)
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if mediaType == "text/html" {
		return "", s, nil
	}
	return s, "", nil
}

var (
	tagRE   = regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>|<[^>]+>`)
	breakRE = regexp.MustCompile(`(?i)<br\s*/?>|</p>|</div>`)
)

// htmlToText keeps an HTML mail's text and line breaks.
func htmlToText(h string) string {
	h = breakRE.ReplaceAllString(h, "\n")
	h = tagRE.ReplaceAllString(h, "")
	r := strings.NewReplacer("&nbsp;", " ", "&amp;", "&", "&lt;", "<", "&gt;", ">", "&quot;", `"`, "&#39;", "'")
	return r.Replace(h)
}

// quoteHeader finds the line mail clients put above the quoted mail, in
// the languages Parley speaks.
var quoteHeader = regexp.MustCompile(`(?i)^(on .+ wrote:|le .+ a écrit ?:|el .+ escribió:|am .+ schrieb .+:|em .+ escreveu:|.+ كتب:|-{2,}\s*original message\s*-{2,}|_{5,}|from: .+)$`)

// stripQuoted keeps what the visitor wrote above the quoted mail and
// their signature.
func stripQuoted(text string) string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	var out []string
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "--" || quoteHeader.MatchString(trimmed) {
			break
		}
		if strings.HasPrefix(trimmed, ">") {
			continue
		}
		out = append(out, strings.TrimRight(line, " \t"))
	}
	result := strings.TrimSpace(strings.Join(out, "\n"))
	for utf8.RuneCountInString(result) > 4000 {
		result = string([]rune(result)[:4000])
	}
	return result
}

// base64Reader decodes a base64 body that mail wraps in lines.
func base64Reader(r io.Reader) io.Reader {
	return base64.NewDecoder(base64.StdEncoding, &newlineSkipper{r: r})
}

// newlineSkipper drops CR and LF so base64 lines decode as one stream.
type newlineSkipper struct{ r io.Reader }

func (n *newlineSkipper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, b := range p[:k] {
			if b != '\r' && b != '\n' {
				p[j] = b
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}
