package enclave

import "github.com/integritee-go/integritee/sidechain"

// DeleteBlocksFrom implements Host for the tests' fake host.
func (h *fakeHost) DeleteBlocksFrom(shard sidechain.ShardID, n uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.blocks[shard] {
		if k >= n {
			delete(h.blocks[shard], k)
		}
	}
	return nil
}
