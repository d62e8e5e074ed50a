package chatsvc

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// apiError is the JSON body of every chatsvc REST error.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Until   string `json:"until,omitempty"`
}

func replyError(c *fiber.Ctx, status int, code, msg string) error {
	return c.Status(status).JSON(apiError{Code: code, Message: msg})
}

// replyErr maps a frameError to its HTTP status; other errors are 500s
// whose detail goes to the log, not the client.
func (s *Service) replyErr(c *fiber.Ctx, err error) error {
	var fe *frameError
	if errors.As(err, &fe) {
		return replyError(c, statusOf(fe.Code), fe.Code, fe.Message)
	}
	if errors.Is(err, ErrNotFound) {
		return replyError(c, fiber.StatusNotFound, CodeNotFound, "not found")
	}
	if errors.Is(err, errStopped) {
		return replyError(c, fiber.StatusServiceUnavailable, CodeInternal, err.Error())
	}
	s.log.Error("request failed", "method", c.Method(), "path", c.Path(), "err", err)
	return replyError(c, fiber.StatusInternalServerError, CodeInternal, "internal error; retry later")
}

func statusOf(code string) int {
	switch code {
	case CodeNotFound, CodeUnknownSite:
		return fiber.StatusNotFound
	case CodeForbidden, CodeOriginNotAllowed, CodeBanned:
		return fiber.StatusForbidden
	case CodeInvalidToken, CodeIdentity:
		return fiber.StatusUnauthorized
	case CodeRateLimited:
		return fiber.StatusTooManyRequests
	case CodeConflict:
		return fiber.StatusConflict
	case "file_too_large", CodeQuotaExceeded:
		return fiber.StatusRequestEntityTooLarge
	case "unsupported_type":
		return fiber.StatusUnsupportedMediaType
	}
	return fiber.StatusBadRequest
}

// ownOrigin is scheme://host of the request as the browser addressed it.
func ownOrigin(c *fiber.Ctx) string {
	return strings.ToLower(c.Protocol() + "://" + c.Hostname())
}

// staffOriginOK allows the server's own origin and configured ones.
// Requests without Origin (non-browser clients) carry no ambient cookie
// risk from another site and are allowed.
func (s *Service) staffOriginOK(c *fiber.Ctx) bool {
	origin := strings.ToLower(c.Get(fiber.HeaderOrigin))
	if origin == "" || origin == ownOrigin(c) {
		return true
	}
	for _, o := range s.cfg.StaffOrigins {
		if strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}
