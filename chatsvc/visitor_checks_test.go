package chatsvc

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/sqlstore/sqltest"
)

func TestBrowserTimezone(t *testing.T) {
	for tz, want := range map[string]bool{
		"Europe/Paris": true, "America/Argentina/Buenos_Aires": true, "UTC": true, "Etc/GMT+5": true, "EST5EDT": true,
		"right/UTC": false, "posix/Europe/Paris": false, "Local": false, "": false, "Mars/Olympus": false,
		"../../etc/passwd": false, "Europe/Paris\n": false, "Factory": false,
	} {
		if got := browserTimezone(tz); got != want {
			t.Errorf("browserTimezone(%q) = %v, want %v", tz, got, want)
		}
	}
}

// TestVisitorTimezoneIsChecked: a context frame with a zone browsers
// reject is refused and stores nothing; one stored before the check is
// not shown to agents (it broke the console's visitor panel).
func TestVisitorTimezoneIsChecked(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		tok, vid := e.visitorSession("")
		v := e.visitorSocket(tok)
		v.send(map[string]any{"type": "context", "ref": "c1", "page_url": "https://shop.example/a", "timezone": "right/UTC"})
		if f := v.expect("error", byRef("c1")); f.str("code") != CodeBadRequest || !strings.Contains(f.str("message"), "right/UTC") {
			t.Fatalf("bad zone: %v", f)
		}
		v.send(map[string]any{"type": "context", "ref": "c2", "page_url": "https://shop.example/b", "timezone": "Europe/Paris"})
		v.expect("ok", byRef("c2"))
		got, err := e.svc.visitorDetail(context.Background(), vid)
		if err != nil || got.Timezone != "Europe/Paris" || got.LocalTime == "" {
			t.Fatalf("visitor = %+v, %v", got, err)
		}
		if err := e.store.SetVisitorPage(context.Background(), vid, VisitorPage{URL: "x", Timezone: "right/UTC"}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got, _ := e.svc.visitorDetail(context.Background(), vid); got.Timezone != "" || got.LocalTime != "" {
			t.Fatalf("a stored right/UTC reaches agents: %+v", got)
		}
	})
}

// TestIdentityRequiredRefusesAnonymousVisitors: a site that requires
// identity verification hands out no anonymous token, and tokens issued
// before the flag was set no longer open a socket or upload.
func TestIdentityRequiredRefusesAnonymousVisitors(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		oldTok, _ := e.visitorSession("")
		in := SiteInput{Name: "Shop", AllowedOrigins: []string{testOrigin}, IdentityRequired: true}
		if _, err := e.svc.UpdateSite(context.Background(), e.site.ID, in, "admin"); err != nil {
			t.Fatal(err)
		}
		code, body := postJSON(e.base+"/api/chat/visitor/session", map[string]any{"site_key": e.site.Key}, map[string]string{"Origin": testOrigin})
		if code != http.StatusUnauthorized || !strings.Contains(string(body), CodeIdentity) {
			t.Fatalf("anonymous session on an identity-required site: %d %s", code, body)
		}
		h := http.Header{}
		h.Set("Origin", testOrigin)
		if code, b := dialFail(t, e.ws+"/ws/visitor?token="+oldTok, h); code != http.StatusUnauthorized || b.Code != CodeIdentity {
			t.Fatalf("socket with an anonymous token: %d %+v", code, b)
		}
		if code, b := upload(t, e.base+"/api/chat/visitor/attachments", "a.png", "image/png", pngBytes(t),
			map[string]string{"Authorization": "Bearer " + oldTok, "Origin": testOrigin}); code != http.StatusUnauthorized {
			t.Fatalf("upload with an anonymous token: %d %s", code, b)
		}
		site, _ := e.svc.Site(e.site.ID)
		var sess sessionResponse
		doJSON(t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", map[string]any{"site_key": e.site.Key,
			"user": map[string]string{"id": "customer-7", "hash": IdentityHash(site.Secret, "customer-7")}}, 200, &sess, map[string]string{"Origin": testOrigin})
		if !sess.Verified {
			t.Fatal("verified session not verified")
		}
		e.visitorSocket(sess.Token)
	})
}

// TestBanByAddress: with ban_address_hours set, banning an anonymous
// visitor also bans their address for the site, so a fresh session from
// it is refused; lifting the ban lifts it; without the setting, or for a
// verified visitor, the address stays free.
func TestBanByAddress(t *testing.T) {
	sqltest.Run(t, func(t *testing.T, backend string) {
		e := newEnv(t, backend)
		ctx := context.Background()
		session := func() (int, string) {
			code, body := postJSON(e.base+"/api/chat/visitor/session", map[string]any{"site_key": e.site.Key}, map[string]string{"Origin": testOrigin})
			return code, string(body)
		}
		_, vid := e.visitorSession("")
		if err := e.svc.Ban(ctx, e.site.ID, vid, time.Now().Add(time.Hour), "spam"); err != nil {
			t.Fatal(err)
		}
		if code, body := session(); code != http.StatusOK {
			t.Fatalf("without ban_address_hours a new session is refused: %d %s", code, body)
		}
		in := SiteInput{Name: "Shop", AllowedOrigins: []string{testOrigin}, Settings: SiteSettings{BanAddressHours: 2}}
		if _, err := e.svc.UpdateSite(ctx, e.site.ID, in, "admin"); err != nil {
			t.Fatal(err)
		}
		_, vid2 := e.visitorSession("")
		if err := e.svc.Ban(ctx, e.site.ID, vid2, time.Now().Add(time.Hour), "spam"); err != nil {
			t.Fatal(err)
		}
		code, body := session()
		if code != http.StatusForbidden || !strings.Contains(body, CodeBanned) {
			t.Fatalf("a new session from a banned address: %d %s", code, body)
		}
		if b, ok, _ := e.store.IPBan(ctx, e.site.ID, "127.0.0.1", time.Now()); !ok || b.Until.After(time.Now().Add(time.Hour+time.Second)) {
			t.Fatalf("address ban %+v, %v; want one ending with the visitor's ban", b, ok)
		}
		if err := e.svc.LiftBan(ctx, e.site.ID, vid2); err != nil {
			t.Fatal(err)
		}
		if code, body := session(); code != http.StatusOK {
			t.Fatalf("after lifting: %d %s", code, body)
		}
		// A verified visitor is banned by identity, not by address.
		site, _ := e.svc.Site(e.site.ID)
		var sess sessionResponse
		doJSON(t, http.DefaultClient, "POST", e.base+"/api/chat/visitor/session", map[string]any{"site_key": e.site.Key,
			"user": map[string]string{"id": "c-1", "hash": IdentityHash(site.Secret, "c-1")}}, 200, &sess, map[string]string{"Origin": testOrigin})
		if err := e.svc.Ban(ctx, e.site.ID, sess.VisitorID, time.Now().Add(time.Hour), "abuse"); err != nil {
			t.Fatal(err)
		}
		if code, body := session(); code != http.StatusOK {
			t.Fatalf("banning a verified visitor banned the address: %d %s", code, body)
		}
		// The setting is validated.
		admin := e.staff("Ada", access.Admin)
		admin.call("PUT", "/api/chat/sites/"+e.site.ID, map[string]any{"name": "Shop", "settings": map[string]any{"ban_address_hours": 10000}}, http.StatusBadRequest, nil)
	})
}
