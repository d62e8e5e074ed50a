package chatsvc

import (
	"github.com/parleychat/parley/access"
	"github.com/parleychat/parley/ingest"
)

// One assignment rule for every staff action on a conversation (a visible
// message, a status change, an assignment, a transfer): only the assignee
// acts on an assigned conversation; a supervisor or admin may step in,
// and the events of that action carry actor.step_in = true. An unassigned
// conversation is anyone's. Private notes are exempt: they change nothing
// the visitor sees and are how colleagues help.

// staffActor is the author of a staff member's actions.
func staffActor(u access.User) Author {
	return Author{Role: string(ingest.RoleAgent), ID: u.ID, Name: u.Name, mayStepIn: u.Has(access.Supervisor)}
}

// mayAct applies the rule to by acting on c, inside the writer's
// transaction (so it sees the assignee as committed), and marks by as
// stepping in when it does.
func mayAct(c *convState, by *Author) error {
	by.stepIn = false
	if by.Role != string(ingest.RoleAgent) || c.Assignee == "" || c.Assignee == by.ID {
		return nil
	}
	if !by.mayStepIn {
		return errf(CodeForbidden, "conversation %s is assigned to another agent; only they, a supervisor or an admin may act on it", c.ID)
	}
	by.stepIn = true
	return nil
}
