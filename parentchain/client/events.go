package client

import (
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/parentchain/types"
)

// FromABCI converts an ABCI event of type "module.Name" back to an event.
func FromABCI(typ string, attrs []abci.EventAttribute) types.Event {
	module, name, _ := strings.Cut(typ, ".")
	e := types.Event{Module: module, Name: name}
	for _, a := range attrs {
		e.Attrs = append(e.Attrs, types.Attr{Key: a.Key, Value: a.Value})
	}
	return e
}
