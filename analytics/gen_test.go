package analytics

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/parleychat/parley/ingest"
)

// generator makes plausible conversations for agreement tests, loader
// tests and benchmarks: bots with and without hand-over, reopens, missed
// chats (the visitor leaves, or an inactivity close), late answers,
// transfers, offline forms (some answered), CSAT with comments,
// moderation with decisions by two moderators, several sites (testSites),
// teams and agents (testStaff).
type generator struct {
	rng   *rand.Rand
	seq   int64
	sites []string
}

func newGenerator(seed uint64) *generator {
	return &generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), sites: []string{"s1", "s2", "s3"}}
}

func (g *generator) ev(typ ingest.Type, site, conv string, role ingest.Role, actor string, at time.Time, p any) ingest.Event {
	e, err := ingest.New(typ, site, conv, ingest.Actor{Role: role, ID: actor}, at, p)
	if err != nil {
		panic(err)
	}
	return e
}

// conversation returns the events of one conversation starting at start.
func (g *generator) conversation(start time.Time) []ingest.Event {
	r := g.rng
	g.seq++
	site := g.sites[r.IntN(len(g.sites))]
	conv := fmt.Sprintf("conv-%d-%d", start.UnixMilli(), g.seq)
	visitor := fmt.Sprintf("v%d", g.seq)
	team := fmt.Sprintf("t%d", r.IntN(3))
	agent := fmt.Sprintf("a%d", r.IntN(8))
	at := start
	step := func(max time.Duration) time.Time {
		at = at.Add(time.Duration(r.Int64N(int64(max))) + time.Millisecond)
		return at
	}
	msgN := 0
	msg := func(role ingest.Role, actor, kind string) ingest.Event {
		msgN++
		return g.ev(ingest.MessageSent, site, conv, role, actor, step(90*time.Second), ingest.MessageSentPayload{
			MessageID: fmt.Sprintf("%s-m%d", conv, msgN), Seq: int64(msgN), Kind: kind, Text: "text"})
	}
	var out []ingest.Event
	channel := ingest.ChannelWidget
	if r.IntN(10) == 0 {
		channel = ingest.ChannelOffline
	}
	out = append(out, g.ev(ingest.ConversationStarted, site, conv, ingest.RoleVisitor, visitor, at,
		ingest.ConversationStartedPayload{Channel: channel, VisitorID: visitor, TeamID: team}))
	out = append(out, msg(ingest.RoleVisitor, visitor, ingest.KindText))
	if channel == ingest.ChannelOffline {
		if r.IntN(2) == 0 { // answered the next day
			at = at.Add(16 * time.Hour)
			out = append(out, g.ev(ingest.ConversationAssigned, site, conv, ingest.RoleSystem, "router", step(time.Hour), ingest.ConversationAssignedPayload{AgentID: agent, Reason: "auto"}),
				msg(ingest.RoleAgent, agent, ingest.KindText),
				g.ev(ingest.ConversationResolved, site, conv, ingest.RoleAgent, agent, step(time.Minute), ingest.ConversationResolvedPayload{Reason: "agent"}))
		}
		return out
	}
	bot := r.IntN(3) == 0
	if bot {
		out = append(out, msg(ingest.RoleBot, "bot", ingest.KindText))
		if r.IntN(2) == 0 { // bot solves it
			out = append(out, g.ev(ingest.ConversationResolved, site, conv, ingest.RoleBot, "bot", step(time.Minute), ingest.ConversationResolvedPayload{Reason: "bot"}))
			return out
		}
		out = append(out, g.ev(ingest.ConversationQueued, site, conv, ingest.RoleBot, "bot", step(time.Minute), ingest.ConversationQueuedPayload{Reason: "handover", TeamID: team}))
	} else {
		out = append(out, g.ev(ingest.ConversationQueued, site, conv, ingest.RoleSystem, "router", at, ingest.ConversationQueuedPayload{Reason: "new"}))
	}
	switch r.IntN(12) {
	case 0: // missed: the visitor gives up
		out = append(out, g.ev(ingest.VisitorLeft, site, conv, ingest.RoleVisitor, visitor, step(10*time.Minute), ingest.VisitorLeftPayload{Reason: "closed"}))
		return out
	case 1: // missed: nobody came, closed for inactivity a day later
		at = at.Add(24 * time.Hour)
		out = append(out, g.ev(ingest.ConversationResolved, site, conv, ingest.RoleSystem, "chatsvc", step(time.Minute), ingest.ConversationResolvedPayload{Reason: "inactive"}))
		return out
	}
	out = append(out, g.ev(ingest.ConversationAssigned, site, conv, ingest.RoleSystem, "router", step(8*time.Minute), ingest.ConversationAssignedPayload{AgentID: agent, Reason: "auto"}))
	if r.IntN(6) == 0 { // transferred before anyone answered, or after a few messages
		if r.IntN(2) == 0 {
			out = append(out, msg(ingest.RoleAgent, agent, ingest.KindText), msg(ingest.RoleVisitor, visitor, ingest.KindText))
		}
		to := fmt.Sprintf("a%d", (r.IntN(7)+1+int(agent[1]-'0'))%8)
		tt := step(3 * time.Minute)
		out = append(out, g.ev(ingest.ConversationTransferred, site, conv, ingest.RoleAgent, agent, tt, ingest.ConversationTransferredPayload{FromAgentID: agent, ToAgentID: to, ToTeamID: team}),
			g.ev(ingest.ConversationAssigned, site, conv, ingest.RoleAgent, agent, tt, ingest.ConversationAssignedPayload{AgentID: to, TeamID: team, Reason: "transfer"}))
		agent = to
	}
	for i := 0; i < 1+r.IntN(4); i++ {
		out = append(out, msg(ingest.RoleAgent, agent, ingest.KindText))
		out = append(out, msg(ingest.RoleVisitor, visitor, ingest.KindText))
		if r.IntN(10) == 0 {
			v := out[len(out)-1]
			item := ""
			if r.IntN(2) == 0 {
				item = "item-" + v.ID
			}
			out = append(out, g.ev(ingest.ModerationVerdict, site, conv, ingest.RoleSystem, "moderation", step(time.Second),
				ingest.ModerationVerdictPayload{MessageID: "x", Stage: "worker", Action: []string{ingest.ActionFlag, ingest.ActionBlock, ingest.ActionRedact}[r.IntN(3)],
					Categories: []string{[]string{"spam", "profanity", "pii"}[r.IntN(3)]}, ItemID: item}))
			if item != "" && r.IntN(2) == 0 {
				out = append(out, g.ev(ingest.ModerationDecision, site, conv, ingest.RoleModerator, fmt.Sprintf("mod%d", 1+r.IntN(2)), step(30*time.Minute),
					ingest.ModerationDecisionPayload{ItemID: item, Decision: []string{ingest.DecisionApprove, ingest.DecisionRemove}[r.IntN(2)]}))
			}
		}
	}
	if r.IntN(4) == 0 {
		out = append(out, msg(ingest.RoleAgent, agent, ingest.KindNote))
	}
	out = append(out, msg(ingest.RoleAgent, agent, ingest.KindText))
	out = append(out, g.ev(ingest.ConversationResolved, site, conv, ingest.RoleAgent, agent, step(5*time.Minute), ingest.ConversationResolvedPayload{Reason: "agent"}))
	if r.IntN(3) == 0 {
		// Some rate at once, some the next day.
		wait := time.Minute
		if r.IntN(4) == 0 {
			wait = 30 * time.Hour
		}
		out = append(out, g.ev(ingest.CSATSubmitted, site, conv, ingest.RoleVisitor, visitor, step(wait), ingest.CSATSubmittedPayload{Rating: 1 + r.IntN(5), Comment: []string{"", "thanks", "=cmd|' /C calc'!A0"}[r.IntN(3)]}))
	}
	if r.IntN(6) == 0 {
		out = append(out, g.ev(ingest.ConversationReopened, site, conv, ingest.RoleVisitor, visitor, step(time.Hour), ingest.ConversationReopenedPayload{Reason: "visitor_message"}))
		out = append(out, msg(ingest.RoleVisitor, visitor, ingest.KindText))
		out = append(out, msg(ingest.RoleAgent, agent, ingest.KindText))
		out = append(out, g.ev(ingest.ConversationResolved, site, conv, ingest.RoleAgent, agent, step(5*time.Minute), ingest.ConversationResolvedPayload{Reason: "agent"}))
	}
	return out
}

// events returns n conversations spread over span from start.
func (g *generator) events(n int, start time.Time, span time.Duration) []ingest.Event {
	var out []ingest.Event
	for i := 0; i < n; i++ {
		out = append(out, g.conversation(start.Add(time.Duration(g.rng.Int64N(int64(span)))))...)
	}
	return out
}
