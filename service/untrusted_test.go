package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/integritee-go/integritee/jsonrpc"
	"github.com/integritee-go/integritee/service/blockstore"
	"github.com/integritee-go/integritee/sidechain"
)

var fetchShard = sidechain.ShardID{7}

// serveBlocks stores n blocks of size bytes each (numbers 1..n) and serves
// them on the untrusted port's server, capping answers at maxBytes.
func serveBlocks(t *testing.T, n, size, maxBytes int, limits jsonrpc.Limits) (string, *jsonrpc.ConnStats) {
	t.Helper()
	store, err := blockstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for i := 1; i <= n; i++ {
		b := &sidechain.Block{Header: sidechain.Header{Number: uint64(i), Shard: fetchShard}}
		if err := store.Put(b, bytes.Repeat([]byte{byte(i)}, size)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stats := &jsonrpc.ConnStats{}
	u := newUntrustedServer(store, slog.New(slog.NewTextHandler(io.Discard, nil)), limits, maxBytes, stats)
	go u.Serve(l)
	t.Cleanup(func() { u.Close() })
	return "ws://" + l.Addr().String(), stats
}

func fetchCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestFetchAnswersAreCappedInBytes(t *testing.T) {
	url, _ := serveBlocks(t, 10, 100<<10, 256<<10, DefaultConfig().UntrustedLimits())
	got, err := fetchBlocks(fetchCtx(t), url, fetchShard, 1, 10, 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	// The first block, and the next while the total stays within the cap.
	if len(got) != 2 || !bytes.Equal(got[1], bytes.Repeat([]byte{2}, 100<<10)) {
		t.Fatalf("%d blocks, want 2 (blocks 1 and 2)", len(got))
	}
	// The first block is sent even when it alone is above the cap.
	url, _ = serveBlocks(t, 10, 100<<10, 64<<10, DefaultConfig().UntrustedLimits())
	got, err = fetchBlocks(fetchCtx(t), url, fetchShard, 1, 10, 128<<10)
	if err != nil || len(got) != 1 {
		t.Fatalf("with a 64 KiB cap: %d blocks, %v; want the first one", len(got), err)
	}
}

// A fetcher refuses an answer above its own read limit, with an error that
// says so; the serving side goes on.
func TestFetcherRefusesAnAnswerAboveItsReadLimit(t *testing.T) {
	url, _ := serveBlocks(t, 10, 100<<10, 1<<20, DefaultConfig().UntrustedLimits())
	_, err := fetchBlocks(fetchCtx(t), url, fetchShard, 1, 10, 256<<10)
	if !errors.Is(err, ErrFetchTooLarge) || !strings.Contains(err.Error(), "--fetch-max-bytes") {
		t.Fatalf("fetch of a 2 MB answer with a 576 KiB read limit: %v, want ErrFetchTooLarge", err)
	}
	if got, err := fetchBlocks(fetchCtx(t), url, fetchShard, 1, 10, 1<<20); err != nil || len(got) != 10 {
		t.Fatalf("a fetcher with the same cap: %d blocks, %v", len(got), err)
	}
}

func TestUntrustedPortRefusesConnectionsBeyondItsLimit(t *testing.T) {
	c := DefaultConfig()
	c.UntrustedMaxConnections = 1
	url, stats := serveBlocks(t, 1, 10, 1<<20, c.UntrustedLimits())
	held, _, err := ws.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fetchBlocks(fetchCtx(t), url, fetchShard, 1, 1, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "bad handshake") || stats.Refused.Load() != 1 {
		t.Fatalf("fetch beyond the limit: %v (refused %d), want a refused handshake", err, stats.Refused.Load())
	}
	held.Close()
	deadline := time.Now().Add(20 * time.Second)
	for stats.Open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got, err := fetchBlocks(fetchCtx(t), url, fetchShard, 1, 1, 1<<20); err != nil || len(got) != 1 {
		t.Fatalf("fetch once the slot is free: %d blocks, %v", len(got), err)
	}
}

// The untrusted port speaks JSON-RPC 2.0 like the trusted one; it answers
// a batch of one fetch at a time (each answer may be megabytes).
func TestUntrustedPortAnswersBatchesOfOne(t *testing.T) {
	url, _ := serveBlocks(t, 1, 2, 1<<20, DefaultConfig().UntrustedLimits())
	c, _, err := ws.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := `{"jsonrpc":"2.0","id":null,"method":"sidechain_fetchBlocksFromPeer","params":["` + fetchShard.String() + `",1,1]}`
	for msg, want := range map[string]string{
		req:                         `{"jsonrpc":"2.0","result":["0x0101"],"id":null}`,
		"[" + req + "]":             `[{"jsonrpc":"2.0","result":["0x0101"],"id":null}]`,
		"[" + req + "," + req + "]": `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request: a batch of 2 requests; at most 1"},"id":null}`,
		`{"jsonrpc":"2.0","id":1,"method":"nope"}`:                                             `{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found: nope"},"id":1}`,
		`{"jsonrpc":"2.0","id":1,"method":"sidechain_fetchBlocksFromPeer","params":["x",2,1]}`: `{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params: want [shard (base58), from, to] with from \u003c= to"},"id":1}`,
	} {
		if err := c.WriteMessage(ws.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%.60s…\n got %s\nwant %s", msg, got, want)
		}
	}
}
