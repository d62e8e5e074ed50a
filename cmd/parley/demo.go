package main

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/chatsvc"
	"github.com/parleychat/parley/ingest"
)

// demoAgent is a staff member the demo traffic is answered by.
type demoAgent struct {
	email, name, team string
	id                string
}

var demoStaff = []demoAgent{
	{email: "maya@demo.parley", name: "Maya Okafor", team: "support"},
	{email: "lucas@demo.parley", name: "Lucas Weber", team: "support"},
	{email: "sofia@demo.parley", name: "Sofía Martín", team: "support"},
	{email: "kenji@demo.parley", name: "Kenji Sato", team: "billing"},
	{email: "amara@demo.parley", name: "Amara Diallo", team: "billing"},
}

var (
	demoQuestions = []string{
		"Hi, where is my order? It was due yesterday.",
		"Can I change the delivery address on order A-2291?",
		"How do I reset my password?",
		"I was charged twice for my subscription",
		"Do you ship to Portugal?",
		"The discount code SPRING10 doesn't work",
		"How long do refunds take?",
		"Hola, ¿tienen esta talla en azul?",
		"My parcel says delivered but I don't have it",
		"Can I talk to a human please",
	}
	demoAnswers = []string{
		"Thanks for waiting! Let me check that for you.",
		"I can see your order here, one moment please.",
		"Done, I've updated it. Anything else I can help with?",
		"I've issued the refund, it takes 3-5 business days.",
		"Sorry about that, I've sent you a new code.",
	}
	demoAbuse = []string{
		"this is fucking useless",
		"you people are idiots",
		"answer me you stupid b1tch",
		"I will find you and hurt you",
		"buy cheap followers at http://spam.example.biz now!!!",
	}
	demoBotGreeting = "Hi! I'm the Parley bot. Ask me anything, or type 'human' to talk to a person."
	// demoComments are CSAT comments by rating; "" = rated without one.
	demoComments = map[int][2]string{
		1: {"Nobody could tell me where my parcel is.", ""},
		2: {"Took far too long.", ""},
		3: {"", "OK in the end."},
		4: {"", "Quick and friendly."},
		5: {"Super helpful, thank you!", ""},
	}
)

// seedDemo publishes several weeks of realistic conversations for site
// through the real pipeline (Kafka → moderation workers and analytics
// loader), once per data directory.
func seedDemo(ctx context.Context, n *node, siteID string, weeks int, out func(string)) error {
	marker := filepath.Join(n.cfg.DataDir, "demo-seeded")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	agents, err := ensureDemoStaff(ctx, n.guard.Directory(), siteID)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(42, uint64(weeks)))
	end := time.Now().Add(-time.Minute)
	start := end.AddDate(0, 0, -7*weeks)
	loc, _ := time.LoadLocation("Europe/Berlin")
	var batch []ingest.Event
	var published, conversations int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := n.producer.Publish(ctx, batch...); err != nil {
			return fmt.Errorf("publish demo events: %w", err)
		}
		published += len(batch)
		batch = batch[:0]
		return nil
	}
	for hour := start.Truncate(time.Hour); hour.Before(end); hour = hour.Add(time.Hour) {
		local := hour.In(loc)
		rate := demoHourlyRate(local)
		for i := poisson(rng, rate); i > 0; i-- {
			at := hour.Add(time.Duration(rng.Int64N(int64(time.Hour))))
			if at.After(end) {
				continue
			}
			evs, err := demoConversation(rng, siteID, at, end, agents)
			if err != nil {
				return err
			}
			batch = append(batch, evs...)
			conversations++
		}
		if len(batch) >= 2000 {
			if err := flush(); err != nil {
				return err
			}
			out(fmt.Sprintf("demo: %d conversations, %d events published (up to %s)", conversations, published, local.Format("2006-01-02")))
		}
	}
	for day := start.In(loc); day.Before(end); day = day.AddDate(0, 0, 1) {
		evs, err := demoShifts(rng, day, end, agents)
		if err != nil {
			return err
		}
		batch = append(batch, evs...)
	}
	if err := flush(); err != nil {
		return err
	}
	out(fmt.Sprintf("demo: done, %d conversations over %d weeks, %d events", conversations, weeks, published))
	return os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o640)
}

// ensureDemoStaff creates the demo agents, working on the demo site.
func ensureDemoStaff(ctx context.Context, store *access.Directory, siteID string) ([]demoAgent, error) {
	users, err := store.Users(ctx)
	if err != nil {
		return nil, err
	}
	byEmail := map[string]string{}
	for _, u := range users {
		byEmail[u.Email] = u.ID
	}
	agents := make([]demoAgent, len(demoStaff))
	for i, a := range demoStaff {
		if id, ok := byEmail[a.email]; ok {
			a.id = id
		} else {
			u, err := store.CreateUser(ctx, a.email, a.name, ingest.NewID(), []access.Role{access.Agent}, a.team)
			if err != nil {
				return nil, fmt.Errorf("create demo agent %s: %w", a.email, err)
			}
			if err := store.SetSites(ctx, u.ID, []string{siteID}); err != nil {
				return nil, fmt.Errorf("demo agent %s's site: %w", a.email, err)
			}
			a.id = u.ID
		}
		agents[i] = a
	}
	return agents, nil
}

// demoHourlyRate is the expected conversations per hour: a working-day
// curve peaking late morning, quieter evenings and weekends.
func demoHourlyRate(t time.Time) float64 {
	h := float64(t.Hour()) + 0.5
	day := 1.0
	switch t.Weekday() {
	case time.Saturday:
		day = 0.35
	case time.Sunday:
		day = 0.25
	}
	curve := 0.4 + 9*math.Exp(-math.Pow(h-11.5, 2)/10) + 5*math.Exp(-math.Pow(h-15.5, 2)/6)
	return curve * day * 0.6
}

func poisson(rng *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// demoConversation writes one conversation's events: optional bot first,
// a queue wait, an agent (or a missed chat), a few exchanges, resolution,
// sometimes CSAT, a reopen, or abuse for the moderators.
func demoConversation(rng *rand.Rand, site string, at, end time.Time, agents []demoAgent) ([]ingest.Event, error) {
	conv := ingest.NewID()
	visitor := ingest.Actor{Role: ingest.RoleVisitor, ID: "v_" + conv[len(conv)-10:]}
	var evs []ingest.Event
	var firstErr error
	seq := int64(0)
	add := func(t ingest.Type, actor ingest.Actor, when time.Time, p any) {
		if when.After(end) || firstErr != nil {
			return
		}
		e, err := ingest.New(t, site, conv, actor, when, p)
		if err != nil {
			firstErr = err
			return
		}
		evs = append(evs, e)
	}
	say := func(actor ingest.Actor, when time.Time, text string) {
		seq++
		add(ingest.MessageSent, actor, when, ingest.MessageSentPayload{MessageID: ingest.NewID(), Seq: seq, Kind: ingest.KindText, Text: text})
	}
	offline := rng.Float64() < 0.05
	channel := ingest.ChannelWidget
	if offline {
		channel = ingest.ChannelOffline
	}
	add(ingest.ConversationStarted, visitor, at, ingest.ConversationStartedPayload{
		Channel: channel, VisitorID: visitor.ID, PageURL: "https://shop.example.com/orders", UserAgent: "Mozilla/5.0",
	})
	t := at.Add(2 * time.Second)
	say(visitor, t, demoQuestions[rng.IntN(len(demoQuestions))])
	bot := ingest.Actor{Role: ingest.RoleBot, ID: "bot"}
	system := ingest.Actor{Role: ingest.RoleSystem, ID: "router"}
	queueReason := "new"
	if !offline && rng.Float64() < 0.4 {
		t = t.Add(time.Second)
		say(bot, t, demoBotGreeting)
		if rng.Float64() < 0.3 {
			t = t.Add(20 * time.Second)
			say(bot, t, "Here's our guide to delivery times: https://shop.example.com/help/delivery")
			add(ingest.ConversationResolved, bot, t.Add(time.Minute), ingest.ConversationResolvedPayload{Reason: "bot"})
			return evs, firstErr
		}
		t = t.Add(time.Duration(5+rng.IntN(40)) * time.Second)
		queueReason = "handover"
	}
	add(ingest.ConversationQueued, system, t, ingest.ConversationQueuedPayload{Reason: queueReason, Position: 1 + rng.IntN(3)})
	wait := time.Duration(rng.ExpFloat64()*70) * time.Second
	switch r := rng.Float64(); {
	case r < 0.05:
		// Missed: the visitor gives up before anyone answers.
		add(ingest.VisitorLeft, visitor, t.Add(6*time.Minute+wait), ingest.VisitorLeftPayload{Reason: "closed"})
		return evs, firstErr
	case r < 0.07:
		// Missed: nobody came and the visitor never left; closed for inactivity a day later.
		add(ingest.ConversationResolved, ingest.Actor{Role: ingest.RoleSystem, ID: "chatsvc"}, t.Add(24*time.Hour), ingest.ConversationResolvedPayload{Reason: "inactive"})
		return evs, firstErr
	}
	agent := agents[rng.IntN(len(agents))]
	staff := ingest.Actor{Role: ingest.RoleAgent, ID: agent.id}
	t = t.Add(wait)
	add(ingest.ConversationAssigned, system, t, ingest.ConversationAssignedPayload{AgentID: agent.id, TeamID: agent.team, Reason: "auto"})
	if rng.Float64() < 0.12 {
		// Transferred to a colleague of the other team after a first answer.
		t = t.Add(time.Duration(15+rng.ExpFloat64()*60) * time.Second)
		say(staff, t, "Let me hand you to a colleague who knows this best.")
		to := agents[rng.IntN(len(agents))]
		for to.id == agent.id {
			to = agents[rng.IntN(len(agents))]
		}
		t = t.Add(time.Duration(5+rng.IntN(30)) * time.Second)
		add(ingest.ConversationTransferred, staff, t, ingest.ConversationTransferredPayload{FromAgentID: agent.id, ToAgentID: to.id, ToTeamID: to.team})
		add(ingest.ConversationAssigned, staff, t, ingest.ConversationAssignedPayload{AgentID: to.id, TeamID: to.team, Reason: "transfer"})
		agent, staff = to, ingest.Actor{Role: ingest.RoleAgent, ID: to.id}
	}
	for i, turns := 0, 1+rng.IntN(4); i < turns; i++ {
		t = t.Add(time.Duration(15+rng.ExpFloat64()*60) * time.Second)
		say(staff, t, demoAnswers[rng.IntN(len(demoAnswers))])
		t = t.Add(time.Duration(20+rng.IntN(90)) * time.Second)
		if rng.Float64() < 0.03 {
			say(visitor, t, demoAbuse[rng.IntN(len(demoAbuse))])
		} else {
			say(visitor, t, demoQuestions[rng.IntN(len(demoQuestions))])
		}
	}
	t = t.Add(time.Duration(10+rng.IntN(60)) * time.Second)
	say(staff, t, "Glad I could help, have a nice day!")
	t = t.Add(time.Duration(1+rng.IntN(10)) * time.Minute)
	add(ingest.ConversationResolved, staff, t, ingest.ConversationResolvedPayload{Reason: "agent"})
	if rng.Float64() < 0.45 {
		rating := []int{5, 5, 5, 4, 4, 3, 2, 1}[rng.IntN(8)]
		add(ingest.CSATSubmitted, visitor, t.Add(30*time.Second), ingest.CSATSubmittedPayload{Rating: rating, Comment: demoComments[rating][rng.IntN(2)]})
	}
	if rng.Float64() < 0.05 {
		t = t.Add(time.Duration(1+rng.IntN(48)) * time.Hour)
		add(ingest.ConversationReopened, visitor, t, ingest.ConversationReopenedPayload{Reason: "visitor_message"})
		say(visitor, t, "Sorry, one more thing about the same order")
		t = t.Add(time.Duration(1+rng.IntN(5)) * time.Minute)
		say(staff, t, demoAnswers[rng.IntN(len(demoAnswers))])
		add(ingest.ConversationResolved, staff, t.Add(2*time.Minute), ingest.ConversationResolvedPayload{Reason: "agent"})
	}
	return evs, firstErr
}

// welcome makes a fresh `parley serve` usable at once: a site whose
// widget works on Parley's own demo page, its snippet printed, and with
// --demo several weeks of traffic published in the background.
func (n *node) welcome(ctx context.Context, stdout io.Writer) error {
	if n.chat == nil {
		return nil
	}
	site, created, err := n.chat.EnsureDemoSite(ctx, []string{n.url})
	if err != nil {
		return fmt.Errorf("create the first site: %w", err)
	}
	if created {
		n.log.Info("created first site", "site", site.ID)
	}
	snippet := chatsvc.Snippet(n.url, site.Key)
	fmt.Fprintf(stdout, "Widget snippet for site %q:\n  %s\nTry the widget as a visitor: %s/try\n", site.Name, snippet, n.url)
	n.app.Get("/try", func(c *fiber.Ctx) error {
		c.Type("html", "utf-8")
		return tryPage.Execute(c, map[string]string{"Site": site.Name, "Src": n.url + "/widget.js", "Key": site.Key})
	})
	if n.cfg.Demo {
		n.components["demo"] = demoSeeder{n: n, siteID: site.ID, out: stdout}
	}
	return nil
}

// tryPage is a stand-in shop page on Parley's own origin (which the first
// site allows) so a new user can chat as a visitor at once.
var tryPage = template.Must(template.New("try").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example shop · Parley widget</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1f2937}</style>
</head><body>
<h1>Example shop</h1>
<p>This page stands in for your website. The chat bubble in the corner is the Parley widget of site <strong>{{.Site}}</strong>,
installed with one script tag. Open the staff app in another browser (or a private window), sign in as an agent, and answer.</p>
<script src="{{.Src}}" data-site-key="{{.Key}}" async></script>
</body></html>
`))

// demoSeeder runs seedDemo as a component so shutdown waits for it.
type demoSeeder struct {
	n      *node
	siteID string
	out    io.Writer
}

func (d demoSeeder) Mount(fiber.Router)          {}
func (d demoSeeder) Ready(context.Context) error { return nil }
func (d demoSeeder) Run(ctx context.Context) error {
	err := seedDemo(ctx, d.n, d.siteID, 4, func(line string) { fmt.Fprintln(d.out, line) })
	if err != nil && ctx.Err() == nil {
		d.n.log.Error("demo traffic failed", "err", err)
	}
	<-ctx.Done()
	return nil
}

// demoShifts writes each agent's presence for one working day: online from
// about 08:00, away for lunch, offline at about 17:00 (local time).
func demoShifts(rng *rand.Rand, day, end time.Time, agents []demoAgent) ([]ingest.Event, error) {
	if wd := day.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return nil, nil
	}
	midnight := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, day.Location())
	var evs []ingest.Event
	for _, a := range agents {
		at := func(h, m int) time.Time {
			return midnight.Add(time.Duration(h)*time.Hour + time.Duration(m+rng.IntN(20))*time.Minute)
		}
		shift := []struct {
			when           time.Time
			status, before string
		}{
			{at(7, 50), ingest.PresenceOnline, ingest.PresenceOffline},
			{at(12, 0), ingest.PresenceAway, ingest.PresenceOnline},
			{at(12, 40), ingest.PresenceOnline, ingest.PresenceAway},
			{at(17, 0), ingest.PresenceOffline, ingest.PresenceOnline},
		}
		for _, sh := range shift {
			if sh.when.After(end) {
				break
			}
			e, err := ingest.New(ingest.AgentPresence, "*", ingest.AgentKey(a.id), ingest.Actor{Role: ingest.RoleAgent, ID: a.id}, sh.when,
				ingest.AgentPresencePayload{Status: sh.status, Previous: sh.before})
			if err != nil {
				return nil, err
			}
			evs = append(evs, e)
		}
	}
	return evs, nil
}
