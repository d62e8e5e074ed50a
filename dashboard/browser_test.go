package dashboard

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/browsertest"
)

func TestBrowserLogin(t *testing.T) {
	s := startServer(t)
	ctx := browsertest.New(t, 1280, 800)
	// An unauthenticated page visit lands on the login page and comes back after.
	do(t, ctx, "open admin page", chromedp.Navigate(s.URL+"/app/admin/users"))
	waitFor(t, ctx, `location.pathname === '/login'`)
	browsertest.Screenshot(t, ctx, "dashboard-login")
	do(t, ctx, "wrong password",
		chromedp.SendKeys(chromedp.CSS("#email"), "admin@example.test"),
		chromedp.SendKeys(chromedp.CSS("#password"), "not the password"),
		chromedp.Click(chromedp.CSS("#login-submit")))
	waitFor(t, ctx, `!document.querySelector('#login-error').hidden`)
	if msg := eval[string](t, ctx, `document.querySelector('#login-error').textContent`); msg != access.ErrBadCredentials.Error() {
		t.Fatalf("login error shows %q", msg)
	}
	do(t, ctx, "right password",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#password').value = ''`),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-submit")))
	waitFor(t, ctx, `location.pathname === '/app/admin/users' && !!document.querySelector('#users-table')`)
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll('#users-table tbody tr')].map(r => r.dataset.email)`)
	for _, r := range access.Roles {
		if !slices.Contains(rows, string(r)+"@example.test") {
			t.Errorf("users table lacks %s: %v", r, rows)
		}
	}
	browsertest.Screenshot(t, ctx, "dashboard-admin-users")
	// First contentful paint of a page stays well under a second.
	do(t, ctx, "reload", chromedp.Navigate(s.URL+"/app/admin/users"))
	waitFor(t, ctx, `!!document.querySelector('#users-table') && performance.getEntriesByName('first-contentful-paint').length > 0`)
	fcp := eval[float64](t, ctx, `performance.getEntriesByName('first-contentful-paint')[0].startTime`)
	t.Logf("first contentful paint of /app/admin/users: %.0f ms", fcp)
	if fcp > 1000 {
		t.Errorf("first contentful paint took %.0f ms, want < 1000", fcp)
	}
	// Sign out ends the session: the app sends the browser back to login.
	do(t, ctx, "sign out", chromedp.Click(chromedp.CSS("#logout")))
	waitFor(t, ctx, `location.pathname === '/login'`)
	do(t, ctx, "reopen app", chromedp.Navigate(s.URL+"/app/admin/users"))
	waitFor(t, ctx, `location.pathname === '/login'`)
}

func TestBrowserNavigationByRole(t *testing.T) {
	s := startServer(t)
	ctx := browsertest.New(t, 1280, 800)
	want := map[access.Role][]string{
		access.Agent:      {"Inbox"},
		access.Supervisor: {"Live overview", "Reports", "Moderation report", "Canned replies"},
		access.Moderator:  {"Review queue", "Audit log", "Policy", "Moderation report"},
		access.Admin:      {"Inbox", "Live overview", "Reports", "Review queue", "Audit log", "Policy", "Moderation report", "Canned replies", "Sites", "Staff", "Teams", "API tokens", "Webhooks"},
	}
	for _, role := range access.Roles {
		loginUI(t, ctx, s.URL, "/app", string(role)+"@example.test", testPassword)
		got := eval[[]string](t, ctx, `[...document.querySelectorAll('#nav a')].map(a => a.textContent)`)
		if !slices.Equal(got, want[role]) {
			t.Errorf("%s sees menu %v, want %v", role, got, want[role])
		}
		who := eval[string](t, ctx, `document.querySelector('#whoami').textContent`)
		if !strings.Contains(who, "Test "+string(role)) {
			t.Errorf("%s: header shows %q", role, who)
		}
		browsertest.Screenshot(t, ctx, "dashboard-home-"+string(role))
		if role != access.Admin {
			// Typing the address of a page the role may not open shows no access.
			do(t, ctx, "open admin page", chromedp.Navigate(s.URL+"/app/admin/users"))
			waitFor(t, ctx, `document.querySelector('#page-title')?.textContent === 'No access'`)
			if n := eval[int](t, ctx, `document.querySelectorAll('#users-table').length`); n != 0 {
				t.Errorf("%s sees the users table", role)
			}
		}
		// Client-side navigation between allowed pages keeps the shell.
		if len(want[role]) > 1 {
			do(t, ctx, "click second menu entry", chromedp.Navigate(s.URL+"/app"))
			waitFor(t, ctx, `document.querySelectorAll('#nav a').length > 1`)
			eval[bool](t, ctx, `(window.__marker = 1, document.querySelectorAll('#nav a')[1].click(), true)`)
			waitFor(t, ctx, `document.querySelector('#nav a[aria-current=page]')?.textContent === `+jsString(want[role][1]))
			if eval[int](t, ctx, `window.__marker || 0`) != 1 {
				t.Errorf("%s: menu click reloaded the page instead of routing", role)
			}
		}
		do(t, ctx, "sign out", chromedp.Click(chromedp.CSS("#logout")))
		waitFor(t, ctx, `location.pathname === '/login'`)
	}
}

func TestBrowserAdminCreatesUser(t *testing.T) {
	s := startServer(t)
	admin := browsertest.New(t, 1280, 800)
	loginUI(t, admin, s.URL, "/app/admin/teams", "admin@example.test", testPassword)
	waitFor(t, admin, `!!document.querySelector('#new-team-form')`)
	do(t, admin, "create team",
		chromedp.SendKeys(chromedp.CSS("#team-name"), "Billing"),
		chromedp.Click(chromedp.CSS("#new-team-form button[type=submit]")))
	waitFor(t, admin, `[...document.querySelectorAll('#teams-table td')].some(td => td.textContent === 'Billing')`)
	browsertest.Screenshot(t, admin, "dashboard-admin-teams")

	do(t, admin, "open staff", chromedp.Click(chromedp.CSS(`#nav a[href="/app/admin/users"]`)))
	waitFor(t, admin, `!!document.querySelector('#new-user-form') && document.querySelector('#new-team').options.length === 2`)
	evil := `<img src=x onerror="window.__xss=1">Zoë`
	do(t, admin, "fill new user",
		chromedp.SendKeys(chromedp.CSS("#new-email"), "zoe@example.test"),
		chromedp.SendKeys(chromedp.CSS("#new-name"), evil),
		chromedp.SendKeys(chromedp.CSS("#new-password"), "zoe-password-1"),
		chromedp.Click(chromedp.CSS(`#new-user-form input[value=agent]`)),
		chromedp.Click(chromedp.CSS(`#new-user-form input[value=moderator]`)),
		// This server runs no chat role to list sites: the ids are typed.
		chromedp.SendKeys(chromedp.CSS("#new-sites"), "site-a, site-b"))
	eval[bool](t, admin, `(() => { const sel = document.querySelector('#new-team'); sel.value = sel.options[1].value; return true; })()`)
	do(t, admin, "submit", chromedp.Click(chromedp.CSS(`#new-user-form button[type=submit]`)))
	waitFor(t, admin, `!!document.querySelector('#users-table tr[data-email="zoe@example.test"]')`)
	row := eval[[]string](t, admin, `[...document.querySelectorAll('#users-table tr[data-email="zoe@example.test"] td')].map(td => td.textContent)`)
	if row[0] != evil || row[2] != "agent, moderator" || row[3] != "Billing" || row[5] != "site-a, site-b" {
		t.Fatalf("new row shows %q", row)
	}
	if u, err := s.Store.Users(context.Background()); err != nil || !slices.ContainsFunc(u, func(u access.User) bool {
		return u.Email == "zoe@example.test" && slices.Equal(u.Sites, []string{"site-a", "site-b"})
	}) {
		t.Fatalf("zoe's sites were not stored: %v", err)
	}
	if eval[int](t, admin, `document.querySelectorAll('#users-table img').length + (window.__xss || 0)`) != 0 {
		t.Fatal("the user's name was rendered as HTML")
	}
	browsertest.Screenshot(t, admin, "dashboard-admin-user-created")

	// A bad request shows the server's precise message in the form.
	do(t, admin, "duplicate user",
		chromedp.SendKeys(chromedp.CSS("#new-email"), "zoe@example.test"),
		chromedp.SendKeys(chromedp.CSS("#new-name"), "Zoe again"),
		chromedp.SendKeys(chromedp.CSS("#new-password"), "zoe-password-1"),
		chromedp.Click(chromedp.CSS(`#new-user-form input[value=agent]`)),
		chromedp.Click(chromedp.CSS(`#new-user-form button[type=submit]`)))
	waitFor(t, admin, `document.querySelector('#new-user-form .error')?.textContent === 'a user with this email exists'`)

	// The new account works in another browser and sees its roles' pages.
	zoe := browsertest.New(t, 1024, 768)
	loginUI(t, zoe, s.URL, "/app", "zoe@example.test", "zoe-password-1")
	got := eval[[]string](t, zoe, `[...document.querySelectorAll('#nav a')].map(a => a.textContent)`)
	if !slices.Equal(got, []string{"Inbox", "Review queue", "Audit log", "Policy", "Moderation report"}) {
		t.Fatalf("new user's menu: %v", got)
	}
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// At tablet width the menu folds behind a button that keyboard users can open.
func TestBrowserTabletMenu(t *testing.T) {
	s := startServer(t)
	ctx := browsertest.New(t, 768, 1024)
	loginUI(t, ctx, s.URL, "/app/admin/teams", "admin@example.test", testPassword)
	waitFor(t, ctx, `!!document.querySelector('#teams-list')`)
	if eval[bool](t, ctx, `(() => { const r = document.querySelector('#nav').getBoundingClientRect(); return r.right > 0; })()`) {
		t.Fatal("the menu covers the page at tablet width")
	}
	eval[bool](t, ctx, `(document.querySelector('#nav-toggle').focus(), document.querySelector('#nav-toggle').click(), true)`)
	waitFor(t, ctx, `document.querySelector('#nav').getBoundingClientRect().left >= 0 && document.querySelector('#nav-toggle').getAttribute('aria-expanded') === 'true'`)
	browsertest.Screenshot(t, ctx, "dashboard-tablet-menu")
	eval[bool](t, ctx, `(document.querySelector('#nav a[href="/app/admin/users"]').click(), true)`)
	waitFor(t, ctx, `!!document.querySelector('#users-table') && document.querySelector('#nav-toggle').getAttribute('aria-expanded') === 'false'`)
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 768 {
		t.Errorf("page is %d px wide at a 768 px window", w)
	}
	browsertest.Screenshot(t, ctx, "dashboard-tablet-users")
}
