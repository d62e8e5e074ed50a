package main

import (
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of compose.yaml this test checks.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Expose      []string          `yaml:"expose"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Configs map[string]struct {
		Content string `yaml:"content"`
	} `yaml:"configs"`
}

// envOutsideFlags are variables the binary reads directly.
var envOutsideFlags = []string{"PARLEY_ADMIN_PASSWORD"}

func TestComposeUsesOnlyWhatTheBinaryAccepts(t *testing.T) {
	raw, err := os.ReadFile("../../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("compose.yaml does not parse: %v", err)
	}
	for _, want := range []string{"kafka", "clickhouse", "postgres"} {
		if _, ok := cf.Services[want]; !ok {
			t.Errorf("compose.yaml has no %s service", want)
		}
	}
	roleCommands := map[string]roleSet{
		"chat": {Chat: true}, "moderate": {Moderation: true}, "analytics": {Analytics: true}, "dashboard": {Dashboard: true},
	}
	gateway := cf.Configs["gateway"].Content
	seenRoles := map[string]bool{}
	chatNodes := 0
	for name, svc := range cf.Services {
		if svc.Image != "parley:local" {
			continue
		}
		if len(svc.Command) == 0 {
			t.Errorf("service %s runs parley without a command", name)
			continue
		}
		roles, ok := roleCommands[svc.Command[0]]
		if !ok {
			t.Errorf("service %s runs unknown command %q", name, svc.Command[0])
			continue
		}
		seenRoles[svc.Command[0]] = true
		// Roles share state through PostgreSQL and Kafka, never a disk.
		if !strings.HasPrefix(svc.Environment["PARLEY_POSTGRES"], "postgres://") {
			t.Errorf("service %s keeps its state in SQLite: PARLEY_POSTGRES is %q", name, svc.Environment["PARLEY_POSTGRES"])
		}
		if len(svc.Volumes) > 0 {
			t.Errorf("service %s mounts %v: roles must not share a disk", name, svc.Volumes)
		}
		var s settings
		fs := roleFlags(svc.Command[0], roles, &s)
		accepted := append(fs.envNames(), envOutsideFlags...)
		for k, v := range svc.Environment {
			if strings.HasPrefix(k, "PARLEY_") && !slices.Contains(accepted, k) {
				t.Errorf("service %s sets %s, which `parley %s` does not read", name, k, svc.Command[0])
			}
			t.Setenv(k, v)
		}
		// The values must pass the binary's own validation.
		var parsed settings
		fs = roleFlags(svc.Command[0], roles, &parsed)
		if err := fs.parse(nil); err != nil {
			t.Errorf("service %s: %v", name, err)
		} else if err := parsed.validate(true); err != nil {
			t.Errorf("service %s: invalid configuration: %v", name, err)
		}
		_, port, err := net.SplitHostPort(svc.Environment["PARLEY_ADDR"])
		if err != nil {
			t.Errorf("service %s: PARLEY_ADDR %q: %v", name, svc.Environment["PARLEY_ADDR"], err)
			continue
		}
		if !slices.Contains(svc.Expose, port) {
			t.Errorf("service %s listens on %s but exposes %v", name, port, svc.Expose)
		}
		if probe := strings.Join(svc.Healthcheck.Test, " "); !strings.Contains(probe, "probe http://127.0.0.1:"+port+"/readyz") {
			t.Errorf("service %s health check %q does not probe its own /readyz on %s", name, probe, port)
		}
		if svc.Command[0] == "chat" {
			// Chat nodes sit in one upstream, round robin without stickiness.
			if !strings.Contains(gateway, "server "+name+":"+port+";") {
				t.Errorf("gateway's chat upstream lacks %s:%s", name, port)
			}
			if svc.Environment["PARLEY_NODE_ID"] != name {
				t.Errorf("chat node %s has PARLEY_NODE_ID %q: node ids must differ", name, svc.Environment["PARLEY_NODE_ID"])
			}
			chatNodes++
		} else if !strings.Contains(gateway, "http://"+name+":"+port) {
			t.Errorf("gateway does not route to %s:%s", name, port)
		}
		for k := range svc.Environment {
			os.Unsetenv(k)
		}
	}
	for role := range roleCommands {
		if !seenRoles[role] {
			t.Errorf("compose.yaml has no service running `parley %s`", role)
		}
	}
	if chatNodes < 2 {
		t.Errorf("compose.yaml runs %d chat nodes, want at least two behind the gateway", chatNodes)
	}
	for _, path := range []string{"/ws/", "/api/chat/", "/widget", "/files/"} {
		if !strings.Contains(gateway, "location "+path) || !regexp.MustCompile(`location `+regexp.QuoteMeta(path)+`\s+\{ proxy_pass http://chat; \}`).MatchString(gateway) {
			t.Errorf("gateway does not send %s to the chat upstream", path)
		}
	}
	for _, want := range []string{"proxy_set_header Upgrade $http_upgrade", "proxy_set_header Connection $connection_upgrade"} {
		if !strings.Contains(gateway, strings.ReplaceAll(want, "$", "$$")) {
			t.Errorf("gateway does not pass WebSocket upgrades (%s)", want)
		}
	}
	if strings.Contains(gateway, "ip_hash") || strings.Contains(gateway, "sticky") {
		t.Error("the chat upstream must not pin clients to a node")
	}
}

func TestReadmeDocumentsEveryVariable(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	var s settings
	names := append(roleFlags("serve", roleSet{Chat: true, Moderation: true, Analytics: true, Dashboard: true}, &s).envNames(), envOutsideFlags...)
	for _, env := range names {
		if !strings.Contains(readme, "`"+env+"`") {
			t.Errorf("README.md's configuration table lacks %s", env)
		}
	}
}
