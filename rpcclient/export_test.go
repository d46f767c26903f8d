package rpcclient

import "github.com/integritee-go/integritee/api/trustedrpc"

// PendingCalls returns how many calls await their answer.
func PendingCalls(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// DecodesFast reports whether b takes decodeMessage's fast path (the
// server's own notification and result bytes).
func DecodesFast(b []byte) bool {
	var m message
	return fastUpdate(b, &m) || fastAnswer(b, &m)
}

// WatchOf registers a watch of subscription h, as the SubmitAndWatch
// methods do once answered.
func WatchOf(c *Client, h string) <-chan trustedrpc.Status { return c.watchOf(h) }
