package service

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/sidechain"
)

// answerServer is a peer's untrusted port that answers every request with
// the bytes it is told to.
type answerServer struct {
	mu     sync.Mutex
	answer []byte
}

func (s *answerServer) set(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = b
}

func (s *answerServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	up := ws.Upgrader{}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	if _, _, err := c.ReadMessage(); err != nil {
		return
	}
	s.mu.Lock()
	answer := s.answer
	s.mu.Unlock()
	c.WriteMessage(ws.TextMessage, answer) //nolint:errcheck
}

// fetchAnswer is a sidechain_fetchBlocksFromPeer answer carrying raws.
func fetchAnswer(id string, raws ...[]byte) []byte {
	hexes := make([]string, len(raws))
	for i, r := range raws {
		hexes[i] = "0x" + hex.EncodeToString(r)
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(id), "result": hexes})
	return b
}

// FuzzFetchBlocksAnswer: whatever a peer's untrusted port answers to
// sidechain_fetchBlocksFromPeer (it needs no attestation, so any server
// can), fetchBlocks never panics, and the blocks it returns are exactly the
// hex strings of a well-formed answer with the request's id, decoded; the
// enclave then decodes each (sidechain.Codec.Decode, without panicking).
func FuzzFetchBlocksAnswer(f *testing.F) {
	p, err := account.DevPair("//Alice")
	if err != nil {
		f.Fatal(err)
	}
	sc := sidechain.NewCodec()
	blk := sc.Encode(sc.Seal(p, sidechain.Header{Number: 1, Shard: fetchShard}, sidechain.BlockData{Timestamp: 1}))
	f.Add(fetchAnswer("1", blk, blk[:10]))
	f.Add(fetchAnswer("1"))
	f.Add(fetchAnswer("2", blk))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"Invalid params"}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":["0xzz"]}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":null}`))

	srv := &answerServer{}
	hs := httptest.NewServer(srv)
	f.Cleanup(hs.Close)
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	f.Fuzz(func(t *testing.T, answer []byte) {
		srv.set(answer)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := fetchBlocks(ctx, url, fetchShard, 1, 10, 1<<20)
		if err != nil {
			return
		}
		var resp struct {
			ID     json.RawMessage `json:"id"`
			Result []string        `json:"result"`
		}
		if jerr := json.Unmarshal(answer, &resp); jerr != nil || string(resp.ID) != "1" {
			t.Fatalf("accepted an answer that is not JSON-RPC's for id 1 (%v): %q", jerr, answer)
		}
		if len(got) != len(resp.Result) {
			t.Fatalf("%d blocks from an answer of %d", len(got), len(resp.Result))
		}
		for i, h := range resp.Result {
			want, herr := hex.DecodeString(strings.TrimPrefix(h, "0x"))
			if herr != nil || !bytes.Equal(got[i], want) {
				t.Fatalf("block %d is %x, the answer says %q (%v)", i, got[i], h, herr)
			}
			_, _ = sc.Decode(got[i])
		}
	})
}
