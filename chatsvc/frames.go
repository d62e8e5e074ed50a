package chatsvc

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/parleychat/parley/ingest"
)

// Error codes of error frames and REST errors (docs/protocol.md).
const (
	CodeInvalidJSON      = "invalid_json"
	CodeInvalidUTF8      = "invalid_utf8"
	CodeUnsupportedFrame = "unsupported_frame"
	CodeFrameTooLarge    = "frame_too_large"
	CodeUnknownType      = "unknown_type"
	CodeBadRequest       = "bad_request"
	CodeMessageTooLong   = "message_too_long"
	CodeRateLimited      = "rate_limited"
	CodeNotFound         = "not_found"
	CodeForbidden        = "forbidden"
	CodeBanned           = "banned"
	CodeInternal         = "internal"
	CodeInvalidToken     = "invalid_token"
	CodeOriginNotAllowed = "origin_not_allowed"
	CodeUnknownSite      = "unknown_site"
	CodeIdentity         = "identity_verification_failed"
	CodeConflict         = "conflict"
)

// frameError is a precise, client-facing error.
type frameError struct {
	Code    string
	Message string
}

func (e *frameError) Error() string { return e.Code + ": " + e.Message }

func errf(code, format string, args ...any) *frameError {
	return &frameError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// inFrame is every field any client frame may carry; each type reads its own.
type inFrame struct {
	Type           string            `json:"type"`
	Ref            string            `json:"ref,omitempty"`
	ClientID       string            `json:"client_id,omitempty"`
	ConversationID string            `json:"conversation_id,omitempty"`
	Text           string            `json:"text,omitempty"`
	Kind           string            `json:"kind,omitempty"`
	Attachments    []string          `json:"attachments,omitempty"`
	Typing         bool              `json:"typing,omitempty"`
	UpToSeq        int64             `json:"up_to_seq,omitempty"`
	AfterSeq       int64             `json:"after_seq,omitempty"`
	Rating         int               `json:"rating,omitempty"`
	Comment        string            `json:"comment,omitempty"`
	Status         string            `json:"status,omitempty"`
	Scope          string            `json:"scope,omitempty"`
	PageURL        string            `json:"page_url,omitempty"`
	Referrer       string            `json:"referrer,omitempty"`
	Timezone       string            `json:"timezone,omitempty"`
	Locale         string            `json:"locale,omitempty"`
	Title          string            `json:"title,omitempty"`
	Name           string            `json:"name,omitempty"`
	Email          string            `json:"email,omitempty"`
	Fields         map[string]string `json:"fields,omitempty"`
}

// decodeFrame turns one text message into a frame or a precise error.
func decodeFrame(data []byte, maxBytes int) (inFrame, *frameError) {
	var f inFrame
	if len(data) > maxBytes {
		return f, errf(CodeFrameTooLarge, "frame of %d bytes exceeds %d", len(data), maxBytes)
	}
	if !utf8.Valid(data) {
		return f, errf(CodeInvalidUTF8, "frame is not valid UTF-8 (byte offset %d)", invalidUTF8Offset(data))
	}
	if err := json.Unmarshal(data, &f); err != nil {
		// A frame that parsed far enough to carry a ref still gets it back.
		return f, errf(CodeInvalidJSON, "frame is not a valid JSON object: %v", err)
	}
	if len(f.Ref) > 64 {
		f.Ref = ""
		return f, errf(CodeBadRequest, "ref is longer than 64 bytes")
	}
	if f.Type == "" {
		return f, errf(CodeUnknownType, "frame has no type")
	}
	return f, nil
}

func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

// Outbound frames.

type errorFrame struct {
	Type    string `json:"type"`
	Ref     string `json:"ref,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type refFrame struct {
	Type string `json:"type"`
	Ref  string `json:"ref,omitempty"`
}

type ackFrame struct {
	Type           string        `json:"type"`
	Ref            string        `json:"ref,omitempty"`
	ClientID       string        `json:"client_id"`
	ConversationID string        `json:"conversation_id"`
	MessageID      string        `json:"message_id"`
	Seq            int64         `json:"seq"`
	CreatedAt      ingest.Millis `json:"created_at"`
	Duplicate      bool          `json:"duplicate"`
	Redacted       bool          `json:"redacted"`
	Text           string        `json:"text"`
}

type blockedFrame struct {
	Type           string   `json:"type"`
	Ref            string   `json:"ref,omitempty"`
	ClientID       string   `json:"client_id"`
	ConversationID string   `json:"conversation_id"`
	MessageID      string   `json:"message_id"`
	Seq            int64    `json:"seq"`
	Reason         string   `json:"reason"`
	Categories     []string `json:"categories,omitempty"`
}

type messageFrame struct {
	Type    string  `json:"type"`
	Message Message `json:"message"`
}

type messagesFrame struct {
	Type           string    `json:"type"`
	Ref            string    `json:"ref,omitempty"`
	ConversationID string    `json:"conversation_id"`
	Messages       []Message `json:"messages"`
	Complete       bool      `json:"complete"`
}

type conversationFrame struct {
	Type         string       `json:"type"`
	Conversation Conversation `json:"conversation"`
}

type typingFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	Role           string `json:"role"`
	Name           string `json:"name,omitempty"`
	Typing         bool   `json:"typing"`
}

type receiptFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	Kind           string `json:"kind"`
	Role           string `json:"role"`
	UpToSeq        int64  `json:"up_to_seq"`
}

type queueFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	Position       int    `json:"position"`
}

type hiddenFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	MessageID      string `json:"message_id"`
	Seq            int64  `json:"seq"`
}

type bannedFrame struct {
	Type   string        `json:"type"`
	Until  ingest.Millis `json:"until"`
	Reason string        `json:"reason,omitempty"`
}

type presenceFrame struct {
	Type  string    `json:"type"`
	Agent AgentInfo `json:"agent"`
}

// encode marshals an outbound frame; every frame type here marshals.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("chatsvc: encode %T: %v", v, err))
	}
	return b
}

func errorBytes(ref string, e *frameError) []byte {
	return encode(errorFrame{Type: "error", Ref: ref, Code: e.Code, Message: e.Message})
}
