package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestAPITokenReadsAndAnswersAConversation: an integration with a token
// reads a visitor's conversation and answers it as the bot and as a named
// agent; the visitor gets both live; a token limited to another site sees
// nothing of it; every call is in the token's audit.
func TestAPITokenReadsAndAnswersAConversation(t *testing.T) {
	p := startE2E(t)
	agentID := p.createStaff("ada@tokens.test", "Ada", "agent")
	secret, tokenID := p.createToken("CRM", []string{"conversations:read", "messages:write"}, []string{p.site.ID})
	crm := tokenClient(t, p.base, secret)
	other, _ := p.createToken("Other site", []string{"conversations:read", "messages:write"}, []string{"some-other-site"})
	stranger := tokenClient(t, p.base, other)

	v := newGoVisitor(t, p.base, p.site.Key, p.base)
	convID := v.say("c1", "Where is my parcel?")

	var list struct {
		Conversations []struct {
			ID string `json:"id"`
		} `json:"conversations"`
	}
	crm.call("GET", "/api/chat/conversations?status=all&site_id="+p.site.ID, nil, http.StatusOK, &list)
	if len(list.Conversations) != 1 || list.Conversations[0].ID != convID {
		t.Fatalf("token's inbox: %+v", list)
	}
	var msgs struct {
		Messages []struct {
			Text string `json:"text"`
		} `json:"messages"`
	}
	crm.call("GET", "/api/chat/conversations/"+convID+"/messages", nil, http.StatusOK, &msgs)
	if len(msgs.Messages) != 1 || msgs.Messages[0].Text != "Where is my parcel?" {
		t.Fatalf("messages: %+v", msgs)
	}

	crm.call("POST", "/api/chat/conversations/"+convID+"/messages", map[string]any{"text": "Tracking: AB123", "client_id": "crm-1", "as": "bot"}, http.StatusCreated, nil)
	// A retry with the same client id is stored once.
	crm.call("POST", "/api/chat/conversations/"+convID+"/messages", map[string]any{"text": "Tracking: AB123", "client_id": "crm-1", "as": "bot"}, http.StatusOK, nil)
	got := v.expect("the bot's message", func(f map[string]any) bool { return f["type"] == "message" })
	if m := got["message"].(map[string]any); m["text"] != "Tracking: AB123" || m["author"].(map[string]any)["role"] != "bot" {
		t.Fatalf("visitor got %v", got)
	}
	crm.call("POST", "/api/chat/conversations/"+convID+"/messages", map[string]any{"text": "I will check it myself.", "client_id": "crm-2", "as": "agent", "agent_id": agentID}, http.StatusCreated, nil)
	got = v.expect("the agent's message", func(f map[string]any) bool { return f["type"] == "message" })
	if m := got["message"].(map[string]any); m["text"] != "I will check it myself." || m["author"].(map[string]any)["name"] != "Ada" {
		t.Fatalf("visitor got %v", got)
	}
	if code, body := crm.request("POST", "/api/chat/conversations/"+convID+"/messages", map[string]any{"text": "x", "client_id": "crm-3"}, false); code != http.StatusBadRequest || !strings.Contains(string(body), `as must be`) {
		t.Fatalf("token message without as: %d %s", code, body)
	}

	for _, path := range []string{"/api/chat/conversations/" + convID, "/api/chat/conversations/" + convID + "/messages"} {
		if code, body := stranger.request("GET", path, nil, false); code != http.StatusForbidden || !strings.Contains(string(body), "not allowed on site") {
			t.Errorf("GET %s with another site's token: %d %s", path, code, body)
		}
	}
	if code, body := crm.request("GET", "/api/chat/conversations", nil, false); code != http.StatusBadRequest || !strings.Contains(string(body), "site_id") {
		t.Errorf("limited token without site_id: %d %s", code, body)
	}

	var uses struct {
		Uses []struct {
			Method string `json:"method"`
			Path   string `json:"path"`
			Status int    `json:"status"`
		} `json:"uses"`
	}
	p.admin.call("GET", "/api/admin/tokens/"+tokenID+"/uses", nil, http.StatusOK, &uses)
	if len(uses.Uses) != 7 || uses.Uses[0].Status != http.StatusBadRequest || uses.Uses[len(uses.Uses)-1].Path != "/api/chat/conversations" {
		t.Fatalf("audit of the CRM token: %+v", uses.Uses)
	}
}
