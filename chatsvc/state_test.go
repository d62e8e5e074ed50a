package chatsvc

import (
	"reflect"
	"slices"
	"testing"
)

// changeFrom never lets a changed column go unwritten: each field of
// convState, changed on its own, gets an update kind whose statement
// stores it (see sqliteTx.UpdateConversation). A new field fails here
// until it is placed in one of the lists.
func TestChangeFromCoversEveryColumn(t *testing.T) {
	activity := []string{"LastSeq", "LastRole", "LastPreview", "LastAt", "VisitorReadSeq", "AgentReadSeq",
		"CSATRating", "CSATComment", "CSATAt", "AwaySent", "UpdatedAt", "ResolvedAt",
		"Version",     // set by the store itself
		"VisitorLeft"} // memory only
	routing := []string{"Routing", "TeamID", "QueuedAt"}
	all := []string{"Status", "Assignee"}
	fixed := []string{"ID", "SiteID", "VisitorID", "Channel", "CreatedAt"} // never updated
	old := convState{ID: "c", SiteID: "s", VisitorID: "v", Channel: "widget", Status: StatusOpen, Routing: RoutingQueued}
	if got := changeFrom(nil, &old); got != changeAll {
		t.Errorf("unknown committed row: %d, want changeAll", got)
	}
	if got := changeFrom(&old, &old); got != changeActivity {
		t.Errorf("nothing changed: %d, want changeActivity", got)
	}
	typ := reflect.TypeOf(old)
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		c := old
		f := reflect.ValueOf(&c).Elem().Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Bool:
			f.SetBool(!f.Bool())
		default:
			t.Fatalf("field %s of kind %s: teach this test to change it", name, f.Kind())
		}
		got := changeFrom(&old, &c)
		switch {
		case slices.Contains(fixed, name), slices.Contains(activity, name):
		case slices.Contains(routing, name):
			if got == changeActivity {
				t.Errorf("%s changed: changeActivity would not store it", name)
			}
		case slices.Contains(all, name):
			if got != changeAll {
				t.Errorf("%s changed: kind %d would not store it", name, got)
			}
		default:
			t.Errorf("convState.%s is in no list of this test: which update stores it?", name)
		}
	}
}
