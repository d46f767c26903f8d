package types

import (
	"fmt"
	"testing"

	"github.com/integritee-go/integritee/account"
)

// Events format accounts through a cache of SS58 strings: each account gets
// its own address, also when two share a cache slot, and values print as
// with %v.
func TestNewEventFormatsAccountsThroughTheCache(t *testing.T) {
	var a, b account.ID
	a[0], a[1], a[31] = 7, 9, 1
	b[0], b[1], b[31] = 7, 9, 2 // the same slot as a
	var names AccountNames
	for range 2 {
		for _, id := range []account.ID{a, b, a} {
			if got := names.String(id); got != id.String() {
				t.Fatalf("names.String(%x) = %s, want %s", id, got, id.String())
			}
		}
	}
	want := []Attr{{"who", a.String()}, {"to", b.String()}, {"amount", "5"}, {"n", "3"}, {"s", "x"}}
	ctx := &Context{Codec: NewCodec()}
	ctx.Event("m", "E", "who", a, "to", &b, "amount", NewBalance(5), "n", 3, "s", "x")
	for _, e := range []Event{NewEvent("m", "E", "who", a, "to", &b, "amount", NewBalance(5), "n", 3, "s", "x"), ctx.Events()[0]} {
		if fmt.Sprint(e.Attrs) != fmt.Sprint(want) {
			t.Fatalf("attributes %v, want %v", e.Attrs, want)
		}
	}
}
