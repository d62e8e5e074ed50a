package main

import "testing"

// A check line's near copy is left out of training, whatever its case
// or punctuation; a message that only shares a few words stays.
func TestKeepOffLeavesOutNearCopies(t *testing.T) {
	checks := [][]example{{{text: "I know where you live, pal"}}}
	data := []example{
		{text: "i know where YOU live pal!!"},
		{text: "i know where you live now, so watch out pal"}, // 5 of 9 words: 0.56
		{text: "where do you deliver, pal?"},
		{text: "hi"},
	}
	kept, dropped := keepOff(data, checks)
	if dropped != 2 || len(kept) != 2 || kept[0].text != "where do you deliver, pal?" || kept[1].text != "hi" {
		t.Fatalf("kept %v, dropped %d", kept, dropped)
	}
}
