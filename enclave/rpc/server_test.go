package rpc_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/tee/sim"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

var (
	testShard = sidechain.ShardID{1, 2, 3, 4}
	testHash  = sidechain.Hash{0xAA, 0xBB}
	errStale  = types.NewError("stf", 6, "StaleNonce", "nonce already used (replay)")
)

// fakeBackend records what the server passes it and answers as told.
type fakeBackend struct {
	mu          sync.Mutex
	submitted   [][]byte
	imported    [][]byte
	getters     [][]byte
	submitErr   error
	statuses    []rpc.Status // sent on the watch channel, which is then closed
	getterValue string
	health      error
}

func (f *fakeBackend) Submit(_ context.Context, shard sidechain.ShardID, ct []byte, w rpc.Watcher) (sidechain.Hash, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.submitErr != nil {
		return sidechain.Hash{}, f.submitErr
	}
	f.submitted = append(f.submitted, bytes.Clone(ct))
	if w != nil {
		// As the enclave's pool does: synchronously, maybe before the
		// server has answered, and nothing after the final status.
		for _, s := range f.statuses {
			w.Status(testHash, s)
			if s.Final() {
				break
			}
		}
	}
	return testHash, nil
}

// SubmitOperations refuses an operation 0xbad with errStale; the others
// are hashed as their first byte and, watched, get f.statuses.
func (f *fakeBackend) SubmitOperations(_ context.Context, shard sidechain.ShardID, ops [][]byte, w rpc.Watcher) ([]rpc.Submission, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.submitErr != nil {
		return nil, f.submitErr
	}
	out := make([]rpc.Submission, len(ops))
	for i, op := range ops {
		f.submitted = append(f.submitted, bytes.Clone(op))
		if bytes.Equal(op, []byte{0x0b, 0xad}) {
			out[i].Err = errStale
			continue
		}
		out[i].Hash = sidechain.Hash{op[0]}
		if len(f.statuses) > 1 && !f.statuses[1].Final() {
			out[i].Status = f.statuses[1] // the status at submission, after Submitted
		}
		if w != nil {
			for _, s := range f.statuses {
				w.Status(out[i].Hash, s)
				if s.Final() {
					break
				}
			}
		}
	}
	return out, nil
}

func (f *fakeBackend) Pending(shard sidechain.ShardID) ([]sidechain.Hash, error) {
	return []sidechain.Hash{testHash, {0x01}}, nil
}

func (f *fakeBackend) ExecuteGetter(_ context.Context, shard sidechain.ShardID, g []byte) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.getters = append(f.getters, bytes.Clone(g))
	return f.getterValue, nil
}

func (f *fakeBackend) LatestHeader(shard sidechain.ShardID) (rpc.Header, error) {
	return rpc.Header{Header: sidechain.Header{Number: 42, Shard: shard}, Hash: testHash}, nil
}

func (f *fakeBackend) SubmitForwarded(context.Context, sidechain.ShardID, []byte) (int, error) {
	return 1, nil
}

func (f *fakeBackend) ImportBlock(_ context.Context, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.imported = append(f.imported, bytes.Clone(raw))
	return nil
}

func (f *fakeBackend) ShieldingKey() []byte               { return []byte{0xDE, 0xAD, 0xBE, 0xEF} }
func (f *fakeBackend) Fingerprint() attestation.MrEnclave { return attestation.MrEnclave{9} }
func (f *fakeBackend) Shard() sidechain.ShardID           { return testShard }
func (f *fakeBackend) MuRaURL() string                    { return "127.0.0.1:3443" }
func (f *fakeBackend) UntrustedURL() string               { return "ws://127.0.0.1:2001" }
func (f *fakeBackend) Health() error                      { return f.health }

// certificate returns an RA-TLS certificate of a simulated enclave.
func certificate(t *testing.T) tls.Certificate {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "service")
	if err := os.WriteFile(exe, []byte("enclave code"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := sim.New(sim.Config{Executable: exe, HostSecretPath: filepath.Join(dir, "secret")})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ratls.NewCertificate(b, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serve starts a server of b on a loopback port and returns its wss URL.
func serve(t *testing.T, b rpc.Backend) (string, *rpc.Counters) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counters := &rpc.Counters{}
	s := rpc.NewServer(b, "v-test", slog.New(slog.NewTextHandler(io.Discard, nil)), counters)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l, certificate(t)) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "Server closed") {
			t.Errorf("Serve: %v", err)
		}
	})
	return "wss://" + l.Addr().String(), counters
}

func dial(t *testing.T, url string) *ws.Conn {
	t.Helper()
	d := ws.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 5 * time.Second} //nolint:gosec // test
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// message is any JSON-RPC message the server sends.
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

func send(t *testing.T, c *ws.Conn, raw string) {
	t.Helper()
	if err := c.WriteMessage(ws.TextMessage, []byte(raw)); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, c *ws.Conn) message {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("server sent invalid JSON %q: %v", data, err)
	}
	if m.JSONRPC != "2.0" {
		t.Fatalf("server message without jsonrpc 2.0: %s", data)
	}
	return m
}

// readRaw returns the next message as it came.
func readRaw(t *testing.T, c *ws.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(data)
}

// callRaw sends raw and returns the next message as it came.
func callRaw(t *testing.T, c *ws.Conn, raw string) string {
	t.Helper()
	send(t, c, raw)
	return readRaw(t, c)
}

// call sends raw and returns the next message.
func call(t *testing.T, c *ws.Conn, raw string) message {
	t.Helper()
	send(t, c, raw)
	return read(t, c)
}

func wantError(t *testing.T, m message, code int) {
	t.Helper()
	if m.Error == nil {
		t.Fatalf("got result %s, want error %d", m.Result, code)
	}
	if m.Error.Code != code {
		t.Fatalf("error %d %q, want code %d", m.Error.Code, m.Error.Message, code)
	}
	if m.Result != nil {
		t.Fatalf("error response also carries a result: %s", m.Result)
	}
}

func wantResult(t *testing.T, m message, v any) {
	t.Helper()
	if m.Error != nil {
		t.Fatalf("error %d %q, want a result", m.Error.Code, m.Error.Message)
	}
	if err := json.Unmarshal(m.Result, v); err != nil {
		t.Fatalf("result %s: %v", m.Result, err)
	}
}

// stillWorks checks the connection still answers a well-formed request.
func stillWorks(t *testing.T, c *ws.Conn) {
	t.Helper()
	m := call(t, c, `{"jsonrpc":"2.0","id":"alive","method":"system_version"}`)
	var v string
	wantResult(t, m, &v)
	if v != "v-test" || string(m.ID) != `"alive"` {
		t.Fatalf("system_version = %q (id %s), want v-test (id \"alive\")", v, m.ID)
	}
}

func TestParseErrorKeepsTheConnection(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	for _, raw := range []string{`{"jsonrpc":"2.0","id":1,"method":`, `not json`, `{]`, ``} {
		m := call(t, c, raw)
		wantError(t, m, rpc.CodeParseError)
		if string(m.ID) != "null" {
			t.Errorf("parse error for %q has id %s, want null", raw, m.ID)
		}
	}
	stillWorks(t, c)
}

// A batch is answered with one array, one response per request in the
// order sent; an empty one with a single Invalid Request error.
func TestBatchIsAnsweredWithOneArrayInOrder(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	send(t, c, `[{"jsonrpc":"2.0","id":1,"method":"system_version"},{"jsonrpc":"2.0","id":"two","method":"author_getShard"}]`)
	got := readRaw(t, c)
	want := `[{"jsonrpc":"2.0","result":"v-test","id":1},{"jsonrpc":"2.0","result":"` + testShard.String() + `","id":"two"}]`
	if got != want {
		t.Fatalf("batch answer\n got %s\nwant %s", got, want)
	}
	m := call(t, c, `[]`)
	wantError(t, m, rpc.CodeInvalidRequest)
	if string(m.ID) != "null" {
		t.Errorf("empty batch refusal has id %s, want null", m.ID)
	}
	stillWorks(t, c)
}

func TestMalformedRequestsAreInvalidRequests(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	cases := map[string]string{
		"no jsonrpc":           `{"id":1,"method":"system_version"}`,
		"jsonrpc 1.0":          `{"jsonrpc":"1.0","id":1,"method":"system_version"}`,
		"jsonrpc as number":    `{"jsonrpc":2.0,"id":1,"method":"system_version"}`,
		"no method":            `{"jsonrpc":"2.0","id":1}`,
		"empty method":         `{"jsonrpc":"2.0","id":1,"method":""}`,
		"method not a string":  `{"jsonrpc":"2.0","id":1,"method":7}`,
		"object id":            `{"jsonrpc":"2.0","id":{"a":1},"method":"system_version"}`,
		"array id":             `{"jsonrpc":"2.0","id":[1],"method":"system_version"}`,
		"boolean id":           `{"jsonrpc":"2.0","id":true,"method":"system_version"}`,
		"string params":        `{"jsonrpc":"2.0","id":1,"method":"system_version","params":"x"}`,
		"number params":        `{"jsonrpc":"2.0","id":1,"method":"system_version","params":3}`,
		"boolean params":       `{"jsonrpc":"2.0","id":1,"method":"system_version","params":true}`,
		"a bare string":        `"system_version"`,
		"a bare number":        `42`,
		"a response, not call": `{"jsonrpc":"2.0","id":1,"result":"x"}`,
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			wantError(t, call(t, c, cases[name]), rpc.CodeInvalidRequest)
		})
	}
	stillWorks(t, c)
}

func TestInvalidRequestEchoesAReadableID(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"1.0","id":17,"method":"system_version"}`)
	wantError(t, m, rpc.CodeInvalidRequest)
	if string(m.ID) != "17" {
		t.Fatalf("id %s, want 17", m.ID)
	}
	m = call(t, c, `{"id":"abc","method":"system_version"}`)
	wantError(t, m, rpc.CodeInvalidRequest)
	if string(m.ID) != `"abc"` {
		t.Fatalf("id %s, want \"abc\"", m.ID)
	}
}

// JSON-RPC 2.0 §5: if the id cannot be detected (Invalid Request) it MUST
// be null; an object is no id.
func TestInvalidRequestWithAnObjectIDAnswersWithNullID(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"2.0","id":{"a":1},"method":"system_version"}`)
	wantError(t, m, rpc.CodeInvalidRequest)
	if string(m.ID) != "null" {
		t.Fatalf("id %s, want null", m.ID)
	}
}

func TestParamsNullIsInvalidRequest(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	wantError(t, call(t, c, `{"jsonrpc":"2.0","id":1,"method":"system_version","params":null}`), rpc.CodeInvalidRequest)
}

// Every id the specification allows comes back byte for byte: fractions,
// exponents, negative and large numbers, strings with escapes.
func TestIDsAreEchoedByteForByte(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	for _, id := range []string{`1.5`, `-1`, `-0.25e-3`, `1E+2`, `0`, `18446744073709551616`, `"a\"b\u00e9"`, `""`, `null`} {
		got := callRaw(t, c, `{"jsonrpc":"2.0","id":`+id+`,"method":"system_version"}`)
		if want := `{"jsonrpc":"2.0","result":"v-test","id":` + id + `}`; got != want {
			t.Errorf("id %s:\n got %s\nwant %s", id, got, want)
		}
	}
	stillWorks(t, c)
}

// JSON-RPC 2.0 §4.1: a notification is a request *without* an id member;
// "id": null is a request, answered with "id": null, not ignored.
func TestNullIDIsARequestAnsweredWithNullID(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"2.0","id":null,"method":"system_version"}`)
	var v string
	wantResult(t, m, &v)
	if string(m.ID) != "null" || v != "v-test" {
		t.Fatalf("id %s result %q, want null and v-test", m.ID, v)
	}
	stillWorks(t, c)
}

func TestBinaryFrameIsRefusedAndTheConnectionStays(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	if err := c.WriteMessage(ws.BinaryMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"system_version"}`)); err != nil {
		t.Fatal(err)
	}
	wantError(t, read(t, c), rpc.CodeInvalidRequest)
	stillWorks(t, c)
}

func TestUnknownMethodIsMethodNotFound(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"2.0","id":5,"method":"author_doSomething"}`)
	wantError(t, m, rpc.CodeMethodNotFound)
	if string(m.ID) != "5" {
		t.Fatalf("id %s, want 5", m.ID)
	}
	// With params, too: params of an unknown method are no reason for -32602.
	wantError(t, call(t, c, `{"jsonrpc":"2.0","id":6,"method":"nope","params":[1,2]}`), rpc.CodeMethodNotFound)
	wantError(t, call(t, c, `{"jsonrpc":"2.0","id":7,"method":"nope","params":{"a":1}}`), rpc.CodeMethodNotFound)
	stillWorks(t, c)
}

func TestBadParamsAreInvalidParams(t *testing.T) {
	b := &fakeBackend{}
	url, _ := serve(t, b)
	c := dial(t, url)
	shard := testShard.String()
	cases := map[string]string{
		"submit without params":      `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic"}`,
		"submit with one param":      `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["` + shard + `"]}`,
		"submit with three params":   `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["` + shard + `","0x00","x"]}`,
		"submit with number params":  `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":[1,2]}`,
		"submit with named params":   `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":{"shard":"` + shard + `","ct":"0x00"}}`,
		"submit with a bad shard":    `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["not-a-shard!","0x00"]}`,
		"submit with a short shard":  `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["0x0102","0x00"]}`,
		"submit with bad hex":        `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["` + shard + `","0xzz"]}`,
		"submit with odd hex":        `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["` + shard + `","0xabc"]}`,
		"submit without 0x":          `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["` + shard + `","abcd"]}`,
		"watch with a bad shard":     `{"jsonrpc":"2.0","id":1,"method":"author_submitAndWatchExtrinsic","params":["","0x00"]}`,
		"getter with bad hex":        `{"jsonrpc":"2.0","id":1,"method":"state_executeGetter","params":["` + shard + `","0xq"]}`,
		"header without params":      `{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":[]}`,
		"header with a number":       `{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":[7]}`,
		"header with a bad shard":    `{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":["0xnothex"]}`,
		"pending with a bad shard":   `{"jsonrpc":"2.0","id":1,"method":"author_pendingExtrinsics","params":["x"]}`,
		"import with bad hex":        `{"jsonrpc":"2.0","id":1,"method":"sidechain_importBlock","params":["0x0g"]}`,
		"import with two params":     `{"jsonrpc":"2.0","id":1,"method":"sidechain_importBlock","params":["0x00","0x00"]}`,
		"version with a param":       `{"jsonrpc":"2.0","id":1,"method":"system_version","params":[1]}`,
		"rpc_methods with an object": `{"jsonrpc":"2.0","id":1,"method":"rpc_methods","params":{"a":1}}`,
	}
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			wantError(t, call(t, c, cases[name]), rpc.CodeInvalidParams)
		})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.submitted)+len(b.imported)+len(b.getters) != 0 {
		t.Fatal("a request with bad params reached the backend")
	}
}

func TestNotificationGetsNoResponse(t *testing.T) {
	b := &fakeBackend{}
	url, counters := serve(t, b)
	c := dial(t, url)
	send(t, c, `{"jsonrpc":"2.0","method":"system_version"}`)
	send(t, c, `{"jsonrpc":"2.0","method":"no_such_method"}`)
	send(t, c, `{"jsonrpc":"2.0","method":"author_submitExtrinsic","params":["`+testShard.String()+`","0x01"]}`)
	// The next message must be the answer to this request.
	m := call(t, c, `{"jsonrpc":"2.0","id":99,"method":"system_version"}`)
	if string(m.ID) != "99" {
		t.Fatalf("first message after notifications has id %s (%s), want the answer to 99", m.ID, m.Result)
	}
	b.mu.Lock()
	n := len(b.submitted)
	b.mu.Unlock()
	if n != 0 {
		t.Fatal("a notification submitted an extrinsic")
	}
	// Notifications are counted as requests (handlers run concurrently).
	for deadline := time.Now().Add(2 * time.Second); counters.Requests.Load() != 4; {
		if time.Now().After(deadline) {
			t.Fatalf("Requests counter = %d, want 4", counters.Requests.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Nothing else arrives.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, data, err := c.ReadMessage(); err == nil {
		t.Fatalf("unexpected message after the answer: %s", data)
	}
}

func TestBackendErrorIsApplicationErrorWithItsName(t *testing.T) {
	b := &fakeBackend{submitErr: errStale.Wrap("nonce 3, next is 5")}
	url, _ := serve(t, b)
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["`+testShard.String()+`","0x0102"]}`)
	wantError(t, m, rpc.CodeApplication)
	var data struct {
		Module string `json:"module"`
		Name   string `json:"name"`
		Code   uint32 `json:"code"`
	}
	if err := json.Unmarshal(m.Error.Data, &data); err != nil {
		t.Fatalf("error data %s: %v", m.Error.Data, err)
	}
	if data.Module != "stf" || data.Name != "StaleNonce" || data.Code != 6 {
		t.Fatalf("error data = %+v, want stf/StaleNonce/6", data)
	}
	if !strings.Contains(m.Error.Message, "nonce 3, next is 5") {
		t.Fatalf("error message %q lost the detail", m.Error.Message)
	}

	// An error that names nothing is still an application error, without data.
	b.mu.Lock()
	b.submitErr = errors.New("plain failure")
	b.mu.Unlock()
	m = call(t, c, `{"jsonrpc":"2.0","id":2,"method":"author_submitAndWatchExtrinsic","params":["`+testShard.String()+`","0x0102"]}`)
	wantError(t, m, rpc.CodeApplication)
	if len(m.Error.Data) != 0 && string(m.Error.Data) != "null" {
		t.Fatalf("unnamed error carries data %s", m.Error.Data)
	}
}

func TestHealthErrorIsApplicationError(t *testing.T) {
	url, _ := serve(t, &fakeBackend{health: types.NewError("enclave", 6, "NotReady", "not yet")})
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"2.0","id":1,"method":"system_health"}`)
	wantError(t, m, rpc.CodeApplication)
	if !bytes.Contains(m.Error.Data, []byte(`"NotReady"`)) {
		t.Fatalf("data %s does not name NotReady", m.Error.Data)
	}
}

func TestSubmitAndWatchRepliesFirstThenSendsUpdatesInOrder(t *testing.T) {
	// InSidechainBlock and Retracted do not end the watch; Finalized does.
	final := rpc.Status{Kind: rpc.Finalized, BlockHash: sidechain.Hash{0x77}}
	sent := []rpc.Status{
		{Kind: rpc.Submitted}, {Kind: rpc.Future}, {Kind: rpc.Ready},
		{Kind: rpc.InSidechainBlock, BlockHash: sidechain.Hash{0x66}}, {Kind: rpc.Retracted},
		{Kind: rpc.Ready}, {Kind: rpc.InSidechainBlock, BlockHash: sidechain.Hash{0x77}}, final,
	}
	b := &fakeBackend{statuses: sent}
	url, counters := serve(t, b)
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"2.0","id":"w","method":"author_submitAndWatchExtrinsic","params":["`+testShard.String()+`","0xc0ffee"]}`)
	var hash string
	wantResult(t, m, &hash)
	if string(m.ID) != `"w"` || hash != testHash.String() {
		t.Fatalf("first message: id %s result %q; want the reply with the hash", m.ID, hash)
	}
	want := sent
	for i, w := range want {
		n := read(t, c)
		if n.Method != rpc.WatchNotification || len(n.ID) != 0 {
			t.Fatalf("message %d: method %q id %s, want a %s notification", i, n.Method, n.ID, rpc.WatchNotification)
		}
		var u rpc.Update
		if err := json.Unmarshal(n.Params, &u); err != nil {
			t.Fatalf("notification params %s: %v", n.Params, err)
		}
		if u.Subscription != hash || u.Result != w {
			t.Fatalf("notification %d = %+v, want %+v for %s", i, u, w, hash)
		}
	}
	stillWorks(t, c)
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.submitted) != 1 || !bytes.Equal(b.submitted[0], []byte{0xc0, 0xff, 0xee}) {
		t.Fatalf("backend got %x", b.submitted)
	}
	if counters.Submitted.Load() != 1 {
		t.Fatalf("Submitted counter = %d", counters.Submitted.Load())
	}
}

func TestSubmitWithoutWatchSendsNoUpdates(t *testing.T) {
	b := &fakeBackend{statuses: []rpc.Status{{Kind: rpc.Ready}}}
	url, _ := serve(t, b)
	c := dial(t, url)
	var hash string
	wantResult(t, call(t, c, `{"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":["`+testShard.String()+`","0x01"]}`), &hash)
	if hash != testHash.String() {
		t.Fatalf("hash %q", hash)
	}
	stillWorks(t, c)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, data, err := c.ReadMessage(); err == nil {
		t.Fatalf("unwatched submission got %s", data)
	}
}

func TestRPCMethodsListsEveryMethodAndEachIsServed(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	var got struct {
		Methods []string `json:"methods"`
	}
	wantResult(t, call(t, c, `{"jsonrpc":"2.0","id":1,"method":"rpc_methods"}`), &got)
	if fmt.Sprint(got.Methods) != fmt.Sprint(rpc.Methods) {
		t.Fatalf("rpc_methods = %v, want %v", got.Methods, rpc.Methods)
	}
	// Every method the design lists is there.
	for _, m := range []string{"author_submitAndWatchExtrinsic", "author_submitExtrinsic", "author_pendingExtrinsics",
		"author_getShieldingKey", "author_getFingerprint", "author_getShard", "author_getMuRaUrl",
		"author_getUntrustedUrl", "state_executeGetter", "chain_getHeader", "sidechain_importBlock",
		"system_version", "system_health", "rpc_methods"} {
		if !strings.Contains(fmt.Sprint(got.Methods), m) {
			t.Errorf("rpc_methods lacks %s", m)
		}
	}
	// No listed method is "not found" (with some params, right or wrong).
	for i, m := range rpc.Methods {
		r := call(t, c, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":[]}`, 100+i, m))
		if r.Error != nil && r.Error.Code == rpc.CodeMethodNotFound {
			t.Errorf("%s is listed but not served", m)
		}
	}
}

func TestSimpleMethodsAnswerFromTheBackend(t *testing.T) {
	b := &fakeBackend{getterValue: "12345"}
	url, _ := serve(t, b)
	c := dial(t, url)
	str := func(method string) string {
		var s string
		wantResult(t, call(t, c, `{"jsonrpc":"2.0","id":1,"method":"`+method+`"}`), &s)
		return s
	}
	if got := str("author_getShieldingKey"); got != "0xdeadbeef" {
		t.Errorf("shielding key %q", got)
	}
	if got := str("author_getFingerprint"); got != (attestation.MrEnclave{9}).String() {
		t.Errorf("fingerprint %q", got)
	}
	if got := str("author_getShard"); got != testShard.String() {
		t.Errorf("shard %q", got)
	}
	if got := str("author_getMuRaUrl"); got != "127.0.0.1:3443" {
		t.Errorf("mura url %q", got)
	}
	if got := str("author_getUntrustedUrl"); got != "ws://127.0.0.1:2001" {
		t.Errorf("untrusted url %q", got)
	}
	var health map[string]any
	wantResult(t, call(t, c, `{"jsonrpc":"2.0","id":1,"method":"system_health","params":[]}`), &health)
	if _, ok := health["isSyncing"]; !ok {
		t.Errorf("system_health = %v", health)
	}

	var pending []string
	wantResult(t, call(t, c, `{"jsonrpc":"2.0","id":1,"method":"author_pendingExtrinsics","params":["`+testShard.String()+`"]}`), &pending)
	if len(pending) != 2 || pending[0] != testHash.String() {
		t.Errorf("pending = %v", pending)
	}

	var h rpc.Header
	wantResult(t, call(t, c, `{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":["`+testShard.Hex()+`"]}`), &h)
	if h.Number != 42 || h.Shard != testShard || h.Hash != testHash {
		t.Errorf("header = %+v", h)
	}

	var v string
	wantResult(t, call(t, c, `{"jsonrpc":"2.0","id":1,"method":"state_executeGetter","params":["`+testShard.String()+`","0x0a0b"]}`), &v)
	if v != "12345" {
		t.Errorf("getter = %q", v)
	}

	m := call(t, c, `{"jsonrpc":"2.0","id":1,"method":"sidechain_importBlock","params":["0x`+hex.EncodeToString([]byte("block"))+`"]}`)
	if m.Error != nil || string(m.Result) != "null" {
		t.Errorf("import: %+v %s", m.Error, m.Result)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.getters) != 1 || !bytes.Equal(b.getters[0], []byte{0x0a, 0x0b}) {
		t.Errorf("getter bytes %x", b.getters)
	}
	if len(b.imported) != 1 || string(b.imported[0]) != "block" {
		t.Errorf("imported %q", b.imported)
	}
}

func TestOversizeMessageClosesOnlyThatConnection(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	other := dial(t, url)
	c := dial(t, url)
	big := `{"jsonrpc":"2.0","id":1,"method":"system_version","params":["` + strings.Repeat("a", rpc.MaxMessageBytes) + `"]}`
	_ = c.WriteMessage(ws.TextMessage, []byte(big)) // the server may close while we write
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, data, err := c.ReadMessage(); err == nil {
		t.Fatalf("oversize message answered with %s; want the connection closed", data)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("oversize message neither answered nor closed the connection")
	}
	// The server lives on: an open connection and a new one both work.
	stillWorks(t, other)
	stillWorks(t, dial(t, url))
}

func TestMessageJustUnderTheLimitIsServed(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	prefix := `{"jsonrpc":"2.0","id":1,"method":"system_version","params":["`
	suffix := `"]}`
	msg := prefix + strings.Repeat("a", rpc.MaxMessageBytes-len(prefix)-len(suffix)) + suffix
	if len(msg) != rpc.MaxMessageBytes {
		t.Fatal("test set-up")
	}
	// system_version takes no params: the answer is -32602, but an answer.
	wantError(t, call(t, c, msg), rpc.CodeInvalidParams)
	stillWorks(t, c)
}

func TestStatusJSONRoundTrip(t *testing.T) {
	cases := []struct {
		s    rpc.Status
		json string
	}{
		{rpc.Status{Kind: rpc.Submitted}, `"Submitted"`},
		{rpc.Status{Kind: rpc.Ready}, `"Ready"`},
		{rpc.Status{Kind: rpc.Future}, `"Future"`},
		{rpc.Status{Kind: rpc.Dropped}, `"Dropped"`},
		{rpc.Status{Kind: rpc.Retracted}, `"Retracted"`},
		{rpc.Status{Kind: rpc.InSidechainBlock, BlockHash: sidechain.Hash{0xAB, 0xCD}}, `{"InSidechainBlock":"0xabcd` + strings.Repeat("0", 60) + `"}`},
		{rpc.Status{Kind: rpc.Finalized, BlockHash: sidechain.Hash{0xEF, 0x01}}, `{"Finalized":"0xef01` + strings.Repeat("0", 60) + `"}`},
		{rpc.Status{Kind: rpc.Invalid, Reason: "stale nonce"}, `{"Invalid":"stale nonce"}`},
	}
	for _, c := range cases {
		b, err := json.Marshal(c.s)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.json {
			t.Errorf("Marshal(%+v) = %s, want %s", c.s, b, c.json)
		}
		var back rpc.Status
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if back != c.s {
			t.Errorf("round trip of %s gave %+v, want %+v", b, back, c.s)
		}
	}
	for _, bad := range []string{`{"Other":"x"}`, `{"InSidechainBlock":"0x12"}`, `3`, `{"InSidechainBlock":7}`,
		`{"Finalized":"0x12"}`, `{"Finalized":7}`, `{"Retracted":"0x` + strings.Repeat("0", 64) + `"}`} {
		var s rpc.Status
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s) accepted it as %+v", bad, s)
		}
	}
}

func TestStatusFinal(t *testing.T) {
	for kind, final := range map[string]bool{
		rpc.Submitted: false, rpc.Ready: false, rpc.Future: false,
		rpc.InSidechainBlock: false, rpc.Retracted: false,
		rpc.Finalized: true, rpc.Invalid: true, rpc.Dropped: true,
	} {
		if (rpc.Status{Kind: kind}).Final() != final {
			t.Errorf("%s: Final() = %v", kind, !final)
		}
	}
}

func TestRequestsCounterCountsEveryRequest(t *testing.T) {
	url, counters := serve(t, &fakeBackend{})
	c := dial(t, url)
	for i := 0; i < 3; i++ {
		stillWorks(t, c)
	}
	// Refused messages never reach the handler.
	wantError(t, call(t, c, `{]`), rpc.CodeParseError)
	if got := counters.Requests.Load(); got != 3 {
		t.Fatalf("Requests = %d, want 3", got)
	}
}

// A request that also carries a "result" or "error" member passes the
// stream's check, but jsonrpc2 cannot tell whether it is a request or a
// response and closes the connection.
func TestRequestWithAResultMemberKeepsTheConnection(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"2.0","id":1,"method":"system_version","result":1}`)
	if m.Error != nil && m.Error.Code != rpc.CodeInvalidRequest {
		t.Fatalf("error %d, want an answer or -32600", m.Error.Code)
	}
	stillWorks(t, c)
}

func TestLargeNumericIDIsAnsweredWithTheSameID(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"2.0","id":9007199254740991,"method":"system_version"}`)
	if string(m.ID) != "9007199254740991" {
		t.Fatalf("id %s, want 9007199254740991", m.ID)
	}
}

func TestNegativeIDIsAnsweredWithTheSameID(t *testing.T) {
	url, _ := serve(t, &fakeBackend{})
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"2.0","id":-1,"method":"system_version"}`)
	var v string
	wantResult(t, m, &v)
	if string(m.ID) != "-1" {
		t.Fatalf("id %s, want -1", m.ID)
	}
	stillWorks(t, c)
}

func TestSubmitAndWatchTrustedOperationsAnswersPerElementThenNotifies(t *testing.T) {
	inBlock := rpc.Status{Kind: rpc.InSidechainBlock, BlockHash: sidechain.Hash{0x66}}
	final := rpc.Status{Kind: rpc.Finalized, BlockHash: sidechain.Hash{0x77}}
	// Submitted and the status at submission (Ready) are left out: the
	// answer says them.
	b := &fakeBackend{statuses: []rpc.Status{{Kind: rpc.Submitted}, {Kind: rpc.Ready}, inBlock, final}}
	url, counters := serve(t, b)
	c := dial(t, url)
	m := call(t, c, `{"jsonrpc":"2.0","id":5,"method":"author_submitAndWatchTrustedOperations","params":["`+testShard.String()+`",["0x01","0x0bad","zz","0x02"]]}`)
	var res []trustedrpc.BatchResult
	wantResult(t, m, &res)
	if len(res) != 4 {
		t.Fatalf("%d results: %s", len(res), m.Result)
	}
	if res[0].Hash != (sidechain.Hash{1}).String() || res[3].Hash != (sidechain.Hash{2}).String() || res[0].Error != nil ||
		res[0].Status != rpc.Ready || res[3].Status != rpc.Ready {
		t.Fatalf("accepted elements: %s", m.Result)
	}
	if e := res[1].Error; e == nil || e.Code != rpc.CodeApplication || !strings.Contains(string(e.Data), `"StaleNonce"`) || res[1].Hash != "" {
		t.Fatalf("refused element: %s", m.Result)
	}
	if e := res[2].Error; e == nil || e.Code != rpc.CodeInvalidParams {
		t.Fatalf("element that is not hex: %s", m.Result)
	}
	// Then each accepted element's statuses, in order, after the answer.
	got := map[string][]rpc.Status{}
	for i := 0; i < 4; i++ {
		n := read(t, c)
		var u rpc.Update
		if n.Method != rpc.WatchNotification || json.Unmarshal(n.Params, &u) != nil {
			t.Fatalf("message %d: %+v", i, n)
		}
		got[u.Subscription] = append(got[u.Subscription], u.Result)
	}
	for _, h := range []string{res[0].Hash, res[3].Hash} {
		if fmt.Sprint(got[h]) != fmt.Sprint(b.statuses[2:]) {
			t.Fatalf("%s: %v, want %v", h, got[h], b.statuses[2:])
		}
	}
	if counters.Submitted.Load() != 4 {
		t.Fatalf("Submitted counter %d", counters.Submitted.Load())
	}
	b.mu.Lock()
	n := len(b.submitted)
	b.mu.Unlock()
	if n != 3 {
		t.Fatalf("backend got %d operations, want the 3 that decode", n)
	}

	// Bounds and the single forms.
	many := make([]string, rpc.MaxBatchOperations+1)
	for i := range many {
		many[i] = `"0x01"`
	}
	wantError(t, call(t, c, `{"jsonrpc":"2.0","id":6,"method":"author_submitTrustedOperations","params":["`+testShard.String()+`",[`+strings.Join(many, ",")+`]]}`), rpc.CodeInvalidParams)
	var hash string
	wantResult(t, call(t, c, `{"jsonrpc":"2.0","id":7,"method":"author_submitTrustedOperation","params":["`+testShard.String()+`","0x03"]}`), &hash)
	if hash != (sidechain.Hash{3}).String() {
		t.Fatalf("hash %q", hash)
	}
	wantError(t, call(t, c, `{"jsonrpc":"2.0","id":8,"method":"author_submitTrustedOperation","params":["`+testShard.String()+`","0x0bad"]}`), rpc.CodeApplication)
	stillWorks(t, c)
}
