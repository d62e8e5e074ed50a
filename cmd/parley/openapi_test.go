package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/parleychat/parley/access"
)

// The contract between docs/openapi.yaml and the server: every REST route
// `parley serve` mounts is documented, every documented operation is
// mounted, and each operation's x-parley-roles says exactly which staff
// roles access.Guard admits.

const openAPIFile = "../../docs/openapi.yaml"

// Values of x-parley-roles besides staff role names.
const (
	rolesPublic  = "public"  // no credentials
	rolesVisitor = "visitor" // a visitor token (Authorization: Bearer)
	rolesStaff   = "staff"   // any signed-in staff member
)

var staffRoles = []string{string(access.Agent), string(access.Supervisor), string(access.Moderator), string(access.Admin)}

type openAPIOperation struct {
	Method, Path string // method upper case, path in OpenAPI form (/x/{id})
	Roles        []string
	Scopes       []string // x-parley-scopes: API token scopes that admit it
	Responses    map[string]yaml.Node
}

func (o openAPIOperation) String() string { return o.Method + " " + o.Path }

// loadOpenAPI parses docs/openapi.yaml and checks what holds for every
// operation: a known role set and at least one response.
func loadOpenAPI(t *testing.T) (version string, ops []openAPIOperation) {
	t.Helper()
	raw, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatalf("read %s: %v", openAPIFile, err)
	}
	var doc struct {
		OpenAPI    string                          `yaml:"openapi"`
		Paths      map[string]map[string]yaml.Node `yaml:"paths"`
		Components struct {
			Schemas         map[string]yaml.Node `yaml:"schemas"`
			SecuritySchemes map[string]yaml.Node `yaml:"securitySchemes"`
			Parameters      map[string]yaml.Node `yaml:"parameters"`
			Responses       map[string]yaml.Node `yaml:"responses"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse %s: %v", openAPIFile, err)
	}
	// Every local $ref points at a component that exists.
	for _, m := range regexp.MustCompile(`\$ref: *'?#/components/(\w+)/(\w+)'?`).FindAllStringSubmatch(string(raw), -1) {
		var ok bool
		switch m[1] {
		case "schemas":
			_, ok = doc.Components.Schemas[m[2]]
		case "parameters":
			_, ok = doc.Components.Parameters[m[2]]
		case "responses":
			_, ok = doc.Components.Responses[m[2]]
		case "securitySchemes":
			_, ok = doc.Components.SecuritySchemes[m[2]]
		}
		if !ok {
			t.Errorf("%s: $ref #/components/%s/%s points at nothing", openAPIFile, m[1], m[2])
		}
	}
	for _, scheme := range []string{"session", "csrf", "visitorToken", "apiToken"} {
		if _, ok := doc.Components.SecuritySchemes[scheme]; !ok {
			t.Errorf("%s: security scheme %q is missing", openAPIFile, scheme)
		}
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true, "trace": true}
	for path, item := range doc.Paths {
		for key, node := range item {
			if !methods[key] {
				continue // summary, description, parameters of the path item
			}
			var op struct {
				Roles     []string             `yaml:"x-parley-roles"`
				Scopes    []string             `yaml:"x-parley-scopes"`
				Responses map[string]yaml.Node `yaml:"responses"`
			}
			if err := node.Decode(&op); err != nil {
				t.Errorf("%s %s: %v", strings.ToUpper(key), path, err)
				continue
			}
			o := openAPIOperation{Method: strings.ToUpper(key), Path: path, Roles: op.Roles, Scopes: op.Scopes, Responses: op.Responses}
			for _, sc := range o.Scopes {
				if _, err := access.ParseScope(sc); err != nil {
					t.Errorf("%s: x-parley-scopes: %v", o, err)
				}
			}
			if len(o.Roles) == 0 {
				t.Errorf("%s has no x-parley-roles", o)
			}
			for _, r := range o.Roles {
				if !slices.Contains(staffRoles, r) && r != rolesPublic && r != rolesVisitor && r != rolesStaff {
					t.Errorf("%s: x-parley-roles has unknown role %q", o, r)
				}
			}
			if len(o.Roles) > 1 && (slices.Contains(o.Roles, rolesPublic) || slices.Contains(o.Roles, rolesStaff)) {
				t.Errorf("%s: x-parley-roles %v mixes %q/%q with other roles", o, o.Roles, rolesPublic, rolesStaff)
			}
			if len(o.Responses) == 0 {
				t.Errorf("%s documents no responses", o)
			}
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].String() < ops[j].String() })
	return doc.OpenAPI, ops
}

var fiberParam = regexp.MustCompile(`:(\w+)`)

// openAPIPath turns Fiber's /x/:id into OpenAPI's /x/{id}.
func openAPIPath(p string) string { return fiberParam.ReplaceAllString(p, "{$1}") }

// routeKind says what the contract demands of a mounted route.
type routeKind int

const (
	routeREST   routeKind = iota // must be in docs/openapi.yaml
	routePage                    // pages and static files: no contract
	routeSocket                  // must be in docs/protocol.md or docs/metrics.md
)

func classifyRoute(path string) (routeKind, bool) {
	switch {
	case strings.HasPrefix(path, "/api/"), path == "/healthz", path == "/readyz", path == "/metrics":
		return routeREST, true
	case strings.HasPrefix(path, "/ws/"):
		return routeSocket, true
	case path == "/", path == "/login", path == "/try", path == "/app", strings.HasPrefix(path, "/app/"),
		strings.HasPrefix(path, "/assets/"), strings.HasPrefix(path, "/widget"), strings.HasPrefix(path, "/files/"),
		path == "/email/unsubscribe": // the page an email's unsubscribe link opens, and its one-click POST (docs/integrations.md)
		return routePage, true
	}
	return 0, false
}

func TestOpenAPIMatchesServer(t *testing.T) {
	version, ops := loadOpenAPI(t)
	if !strings.HasPrefix(version, "3.1") {
		t.Errorf("%s declares openapi %q; want 3.1.x", openAPIFile, version)
	}

	var s settings
	fs := roleFlags("serve", roleSet{Chat: true, Moderation: true, Analytics: true, Dashboard: true}, &s)
	fs.SetOutput(io.Discard)
	if err := fs.parse([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if err := s.validate(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	n, err := startNode(ctx, s, roleSet{Chat: true, Moderation: true, Analytics: true, Dashboard: true}, newLogger(&logs, "warn"))
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- n.run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("node stopped with %v\n%s", err, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("node did not stop within 30 s")
		}
	}()

	documented := map[string]openAPIOperation{}
	for _, o := range ops {
		documented[o.String()] = o
	}
	mounted := map[string]bool{}
	var sockets []string
	for _, r := range n.app.GetRoutes(true) {
		if r.Method == http.MethodHead || r.Method == http.MethodOptions {
			continue // Fiber adds HEAD to every GET; CORS preflights are not operations
		}
		kind, ok := classifyRoute(r.Path)
		if !ok {
			t.Errorf("%s %s is mounted but is neither REST (/api/*, ops), a socket (/ws/*) nor a page or static file; document it and extend classifyRoute", r.Method, r.Path)
			continue
		}
		key := r.Method + " " + openAPIPath(r.Path)
		mounted[key] = true
		switch kind {
		case routeREST:
			if _, ok := documented[key]; !ok {
				t.Errorf("%s is mounted but not documented in %s", key, openAPIFile)
			}
		case routeSocket:
			sockets = append(sockets, r.Path)
		}
	}
	for _, o := range ops {
		if !mounted[o.String()] {
			t.Errorf("%s is documented in %s but `parley serve` does not mount it", o, openAPIFile)
		}
	}
	if len(mounted) < 40 {
		t.Errorf("only %d routes mounted; the route listing is broken", len(mounted))
	}

	// Sockets are documented with their frames, not in OpenAPI.
	var socketDocs strings.Builder
	for _, f := range []string{"../../docs/protocol.md", "../../docs/metrics.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		socketDocs.Write(b)
	}
	if len(sockets) == 0 {
		t.Error("no /ws/* route is mounted")
	}
	for _, p := range sockets {
		if !regexp.MustCompile("`(GET )?" + regexp.QuoteMeta(p) + "[`?]").MatchString(socketDocs.String()) {
			t.Errorf("socket %s is mounted but documented in neither docs/protocol.md nor docs/metrics.md", p)
		}
	}

	t.Run("RolesMatchGuards", func(t *testing.T) { checkDocumentedRoles(t, n, ops) })
}

// checkDocumentedRoles calls every documented operation anonymously and
// as a user of each single role, and checks access.Guard's answers
// against x-parley-roles: 401 without credentials, 403 "your role may not
// do this" exactly for the roles the document leaves out.
func checkDocumentedRoles(t *testing.T, n *node, ops []openAPIOperation) {
	store := n.guard.Directory()
	store.SetBcryptCost(bcrypt.MinCost)
	clients := map[string]*openAPIClient{"": {base: n.url, http: &http.Client{Timeout: 20 * time.Second}}}
	for _, role := range staffRoles {
		email := role + "@openapi.test"
		if _, err := store.CreateUser(context.Background(), email, "OpenAPI "+role, "password-"+role, []access.Role{access.Role(role)}, ""); err != nil {
			t.Fatalf("create %s: %v", role, err)
		}
		clients[role] = signInOpenAPI(t, n.url, email, "password-"+role)
	}
	// One API token per scope: x-parley-scopes must say exactly which admit an operation.
	tokens := map[string]*openAPIClient{}
	for _, sc := range access.Scopes {
		nt, err := n.guard.Tokens().Create(context.Background(), "openapi "+string(sc), []string{string(sc)}, nil, "test")
		if err != nil {
			t.Fatal(err)
		}
		tokens[string(sc)] = &openAPIClient{base: n.url, http: &http.Client{Timeout: 20 * time.Second}, bearer: nt.Secret}
	}
	// Logging out ends the session the later calls need: do it last.
	sort.SliceStable(ops, func(i, j int) bool { return ops[j].Path == "/api/auth/logout" && ops[i].Path != "/api/auth/logout" })
	placeholder := regexp.MustCompile(`\{\w+\}`)
	for _, o := range ops {
		path := placeholder.ReplaceAllString(o.Path, "openapi-probe")
		switch {
		case len(o.Roles) == 0, slices.Contains(o.Roles, rolesPublic):
			continue // a missing x-parley-roles is reported by loadOpenAPI
		case slices.Contains(o.Roles, rolesVisitor):
			status, body := clients[""].do(t, o.Method, path)
			if status != http.StatusUnauthorized || !strings.Contains(body, "invalid_token") {
				t.Errorf("%s without a visitor token: %d %s; want 401 invalid_token", o, status, body)
			}
			continue
		}
		if status, body := clients[""].do(t, o.Method, path); status != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d %s; want 401", o, status, body)
		}
		for sc, c := range tokens {
			status, body := c.do(t, o.Method, path)
			refused := status == http.StatusForbidden && (strings.Contains(body, "lacks the scope") || strings.Contains(body, "API tokens may not call"))
			switch admits := slices.Contains(o.Scopes, sc); {
			case status == http.StatusUnauthorized:
				t.Errorf("%s with a %s token: 401 %s", o, sc, body)
			case admits && refused:
				t.Errorf("%s with a %s token: refused (%s), but x-parley-scopes %v admits it", o, sc, body, o.Scopes)
			case !admits && !refused:
				t.Errorf("%s with a %s token: %d %s, but x-parley-scopes %v leaves it out (want 403)", o, sc, status, body, o.Scopes)
			}
		}
		for _, role := range staffRoles {
			allowed := role == string(access.Admin) || slices.Contains(o.Roles, role) || slices.Contains(o.Roles, rolesStaff)
			status, body := clients[role].do(t, o.Method, path)
			refused := status == http.StatusForbidden && strings.Contains(body, "your role may not do this")
			switch {
			case status == http.StatusUnauthorized:
				t.Errorf("%s as %s: 401 %s; the session was refused", o, role, body)
			case allowed && refused:
				t.Errorf("%s as %s: refused (%s), but x-parley-roles %v admits %s", o, role, body, o.Roles, role)
			case !allowed && !refused:
				t.Errorf("%s as %s: %d %s, but x-parley-roles %v leaves %s out (want 403)", o, role, status, body, o.Roles, role)
			}
		}
	}
}

type openAPIClient struct {
	base   string
	http   *http.Client
	csrf   string
	bearer string
}

func signInOpenAPI(t *testing.T, base, email, password string) *openAPIClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &openAPIClient{base: base, http: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	res, err := c.http.Post(base+"/api/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("sign in %s: %v", email, err)
	}
	defer res.Body.Close()
	var out struct {
		CSRF string `json:"csrf"`
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("sign in %s: %d %s", email, res.StatusCode, b)
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.CSRF == "" {
		t.Fatalf("sign in %s: csrf %q, %v", email, out.CSRF, err)
	}
	c.csrf = out.CSRF
	return c
}

// do sends a bodyless request (with the CSRF header when signed in) and
// returns the status and the start of the body.
func (c *openAPIClient) do(t *testing.T, method, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.csrf != "" {
		req.Header.Set(access.CSRFHeader, c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	return res.StatusCode, fmt.Sprintf("%q", b)
}
