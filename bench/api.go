package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// api calls Parley's REST API as one client: a staff session (cookie and
// CSRF token) or a visitor token.
type api struct {
	base   string
	hc     *http.Client
	origin string // Origin header, when set
	cookie string // staff session cookie "name=value"
	csrf   string
	bearer string // visitor token
}

// apiError is a non-2xx answer with the server's message.
type apiError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// do sends a JSON request and decodes a JSON answer into out (when non-nil).
func (a *api) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.origin != "" {
		req.Header.Set("Origin", a.origin)
	}
	if a.cookie != "" {
		req.Header.Set("Cookie", a.cookie)
	}
	if a.csrf != "" && method != http.MethodGet {
		req.Header.Set("X-CSRF-Token", a.csrf)
	}
	if a.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+a.bearer)
	}
	res, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return &apiError{Method: method, Path: path, Status: res.StatusCode, Body: string(data)}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	if method == http.MethodPost && strings.HasSuffix(path, "/api/auth/login") {
		for _, c := range res.Cookies() {
			if c.Name == "parley_session" {
				a.cookie = c.Name + "=" + c.Value
			}
		}
	}
	return nil
}

// staffUser is the part of access's user the bench needs.
type staffUser struct {
	ID    string   `json:"id"`
	Email string   `json:"email"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

// login signs in and keeps the session cookie and CSRF token.
func (a *api) login(ctx context.Context, email, password string) (staffUser, error) {
	var out struct {
		User staffUser `json:"user"`
		CSRF string    `json:"csrf"`
	}
	if err := a.do(ctx, http.MethodPost, "/api/auth/login", map[string]string{"email": email, "password": password}, &out); err != nil {
		return staffUser{}, fmt.Errorf("sign in as %s: %w", email, err)
	}
	if a.cookie == "" {
		return staffUser{}, fmt.Errorf("sign in as %s: no parley_session cookie in the answer", email)
	}
	a.csrf = out.CSRF
	return out.User, nil
}

// site is the part of chatsvc's site the bench needs.
type site struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Key  string `json:"key"`
}

// createSite makes a site for this run: its own name, the bench's origin,
// no bot, always open, and an agent limit high enough for the run.
func (a *api) createSite(ctx context.Context, name, origin string, agentLimit int) (site, error) {
	body := map[string]any{
		"name":            name,
		"allowed_origins": []string{origin},
		"settings": map[string]any{
			"greeting":    "Hello from parley bench",
			"bot":         map[string]any{"enabled": false},
			"agent_limit": agentLimit,
		},
	}
	var s site
	if err := a.do(ctx, http.MethodPost, "/api/chat/sites", body, &s); err != nil {
		return site{}, fmt.Errorf("create site %s: %w", name, err)
	}
	if s.Key == "" || s.ID == "" {
		return site{}, fmt.Errorf("create site %s: answer has no id or key", name)
	}
	return s, nil
}

// createUser makes a staff account (admin only).
// createUser creates a staff account working on sites.
func (a *api) createUser(ctx context.Context, email, name, password string, roles, sites []string) (staffUser, error) {
	var u staffUser
	body := map[string]any{"email": email, "name": name, "password": password, "roles": roles, "sites": sites}
	if err := a.do(ctx, http.MethodPost, "/api/admin/users", body, &u); err != nil {
		return staffUser{}, fmt.Errorf("create user %s: %w", email, err)
	}
	if u.ID == "" {
		return staffUser{}, fmt.Errorf("create user %s: answer has no id", email)
	}
	return u, nil
}

// visitorSession starts a visitor session for the site and returns its token.
func (a *api) visitorSession(ctx context.Context, siteKey, name string) (string, error) {
	var out struct {
		Token     string `json:"token"`
		VisitorID string `json:"visitor_id"`
	}
	body := map[string]any{"site_key": siteKey}
	if name != "" {
		body["user"] = map[string]any{"name": name}
	}
	if err := a.do(ctx, http.MethodPost, "/api/chat/visitor/session", body, &out); err != nil {
		return "", fmt.Errorf("visitor session: %w", err)
	}
	if out.Token == "" {
		return "", errors.New("visitor session: answer has no token")
	}
	return out.Token, nil
}

// assign gives a conversation to an agent (supervisors and admins).
func (a *api) assign(ctx context.Context, conversationID, agentID string) error {
	if err := a.do(ctx, http.MethodPost, "/api/chat/conversations/"+conversationID+"/assign", map[string]string{"agent_id": agentID}, nil); err != nil {
		return fmt.Errorf("assign conversation %s to %s: %w", conversationID, agentID, err)
	}
	return nil
}

// Credentials are the admin account the bench signs in with.
type Credentials struct {
	Email, Password string
}

// readAdminFile parses the initial-admin.txt `parley serve` writes:
// lines "email: …" and "password: …".
func readAdminFile(path string) (Credentials, error) {
	f, err := os.Open(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("admin file: %w", err)
	}
	defer f.Close()
	var c Credentials
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(strings.ToLower(key)) {
		case "email":
			c.Email = strings.TrimSpace(value)
		case "password":
			c.Password = strings.TrimSpace(value)
		}
	}
	if err := sc.Err(); err != nil {
		return Credentials{}, fmt.Errorf("admin file %s: %w", path, err)
	}
	if c.Email == "" || c.Password == "" {
		return Credentials{}, fmt.Errorf("admin file %s: want lines \"email: …\" and \"password: …\"", path)
	}
	return c, nil
}
