package rpcclient_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ws "github.com/gorilla/websocket"

	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// peer is the server's end of a scripted connection.
type peer struct {
	t testing.TB
	c *ws.Conn
}

// request is a request as the peer reads it.
type request struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// scripted serves each websocket connection (plain ws://) with script.
func scripted(t testing.TB, script func(p *peer)) string {
	t.Helper()
	up := ws.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		script(&peer{t: t, c: c})
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// read reads a request; false once the connection has ended.
func (p *peer) read() (request, bool) {
	_, b, err := p.c.ReadMessage()
	if err != nil {
		return request{}, false
	}
	var r request
	if err := json.Unmarshal(b, &r); err != nil || r.JSONRPC != "2.0" || r.Method == "" || r.ID == nil {
		p.t.Errorf("the client sent %s", b)
		return request{}, false
	}
	return r, true
}

func (p *peer) write(msg string) bool { return p.c.WriteMessage(ws.TextMessage, []byte(msg)) == nil }

// answer writes a result as the validateer's server does.
func (p *peer) answer(id json.RawMessage, result string) bool {
	return p.write(`{"jsonrpc":"2.0","result":` + result + `,"id":` + string(id) + `}`)
}

func (p *peer) notify(sub, status string) bool {
	return p.write(`{"jsonrpc":"2.0","method":"` + trustedrpc.WatchNotification +
		`","params":{"subscription":"` + sub + `","result":` + status + `}}`)
}

// waitForClose reads until the client goes.
func (p *peer) waitForClose() {
	for {
		if _, _, err := p.c.ReadMessage(); err != nil {
			return
		}
	}
}

var (
	opHash    = sidechain.Hash{0x42}.String()
	blockHash = sidechain.Hash{0xB1}.String()
)

func TestNotificationsThatBeatTheAnswerAreKept(t *testing.T) {
	url := scripted(t, func(p *peer) {
		r, ok := p.read()
		if !ok {
			return
		}
		if r.Method != "author_submitAndWatchTrustedOperation" || string(r.Params) != `["`+shard.String()+`","0x0102"]` {
			t.Errorf("request %s %s", r.Method, r.Params)
		}
		p.notify(opHash, `"Ready"`)
		p.notify(sidechain.Hash{0x99}.String(), `"Ready"`) // nobody's
		p.notify(opHash, `{"InSidechainBlock":"`+blockHash+`"}`)
		p.answer(r.ID, `"`+opHash+`"`)
		p.notify(opHash, `{"Finalized":"`+blockHash+`"}`)
		p.waitForClose()
	})
	c := dialInsecure(t, url)
	h, ch, err := c.SubmitAndWatchOperation(ctx(t), shard, []byte{1, 2})
	if err != nil || h != opHash {
		t.Fatalf("SubmitAndWatchOperation = %q, %v", h, err)
	}
	want := []rpc.Status{{Kind: rpc.Ready}, inBlock, final}
	if got := drain(t, ch); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
}

// A watch whose final status beat the answer is closed at once.
func TestAFinalStatusBeforeTheAnswerEndsTheWatch(t *testing.T) {
	url := scripted(t, func(p *peer) {
		r, ok := p.read()
		if !ok {
			return
		}
		p.notify(opHash, `"Ready"`)
		p.notify(opHash, `{"Invalid":"stale nonce"}`)
		p.answer(r.ID, `"`+opHash+`"`)
		p.waitForClose()
	})
	c := dialInsecure(t, url)
	_, ch, err := c.SubmitAndWatchOperation(ctx(t), shard, []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	want := []rpc.Status{{Kind: rpc.Ready}, {Kind: rpc.Invalid, Reason: "stale nonce"}}
	if got := drain(t, ch); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
}

func TestACallEndsWhenItsContextDoes(t *testing.T) {
	url := scripted(t, func(p *peer) {
		slow, ok := p.read() // left unanswered until the next call
		if !ok {
			return
		}
		next, ok := p.read()
		if !ok {
			return
		}
		p.answer(slow.ID, `"too late"`)
		p.answer(next.ID, `"`+next.Method+`"`)
		p.waitForClose()
	})
	c := dialInsecure(t, url)
	cctx, cancel := context.WithCancel(ctx(t))
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	var s string
	if err := c.Call(cctx, "slow", nil, &s); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v, %q", err, s)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the cancelled call returned after %v", d)
	}
	if n := rpcclient.PendingCalls(c); n != 0 {
		t.Fatalf("%d pending calls after the cancelled one", n)
	}
	// The late answer to the cancelled call goes nowhere; the connection
	// still works.
	if s, err := c.String(ctx(t), "next"); err != nil || s != "next" {
		t.Fatalf("next call = %q, %v", s, err)
	}
	// A context done before the call: nothing is sent.
	if err := c.Call(cctx, "never", nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with a done context: %v", err)
	}
	if n := rpcclient.PendingCalls(c); n != 0 {
		t.Fatalf("%d pending calls", n)
	}
}

func TestPendingCallsFailWhenTheServerGoes(t *testing.T) {
	const calls = 3
	url := scripted(t, func(p *peer) {
		r, ok := p.read()
		if !ok {
			return
		}
		p.answer(r.ID, `"`+opHash+`"`)
		p.notify(opHash, `"Ready"`)
		for range calls { // then it goes, leaving them unanswered
			if _, ok := p.read(); !ok {
				return
			}
		}
	})
	c, err := rpcclient.Dial(ctx(t), url, rpcclient.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	_, watch, err := c.SubmitAndWatchOperation(ctx(t), shard, []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, calls)
	for range calls {
		go func() { _, err := c.String(ctx(t), "system_version"); errs <- err }()
	}
	for range calls {
		select {
		case err := <-errs:
			var e *rpcclient.Error
			if err == nil || errors.As(err, &e) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("a call pending when the server went: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a call pending when the server went still waits")
		}
	}
	for _, s := range drain(t, watch) {
		if s.Final() {
			t.Fatalf("a final status %v was made up", s)
		}
	}
	if _, err := c.String(ctx(t), "system_version"); err == nil || !strings.Contains(err.Error(), "connection lost") {
		t.Fatalf("a call after the server went: %v", err)
	}
	select {
	case _, open := <-rpcclient.WatchOf(c, opHash):
		if open {
			t.Fatal("a watch after the server went got a status")
		}
	default:
		t.Fatal("a watch after the server went is open")
	}
	if c.Close() == nil {
		t.Fatal("closing a lost connection succeeded")
	}
}

func TestErrorAnswersMapToErrors(t *testing.T) {
	answers := map[string]string{
		"named":     `{"code":-32000,"message":"nonce 0, next is 1","data":{"module":"stf","name":"StaleNonce","code":6}}`,
		"plain":     `{"code":-32601,"message":"Method not found"}`,
		"nomodule":  `{"code":-32000,"message":"m","data":{"name":"X"}}`,
		"nulldata":  `{"code":-32000,"message":"m","data":null}`,
		"otherdata": `{"code":-32000,"message":"m","data":[1,2]}`,
		"unread":    `"boom"`,
	}
	url := scripted(t, func(p *peer) {
		for {
			r, ok := p.read()
			if !ok {
				return
			}
			p.write(`{"jsonrpc":"2.0","error":` + answers[r.Method] + `,"id":` + string(r.ID) + `}`)
		}
	})
	c := dialInsecure(t, url)
	for method, want := range map[string]rpcclient.Error{
		"named":     {Code: -32000, Message: "nonce 0, next is 1", Name: "stf.StaleNonce"},
		"plain":     {Code: -32601, Message: "Method not found"},
		"nomodule":  {Code: -32000, Message: "m"},
		"nulldata":  {Code: -32000, Message: "m"},
		"otherdata": {Code: -32000, Message: "m"},
	} {
		var out string
		err := c.Call(ctx(t), method, nil, &out)
		var e *rpcclient.Error
		if !errors.As(err, &e) || *e != want || err.Error() != want.Message {
			t.Errorf("%s: %#v, want %+v", method, err, want)
		}
	}
	err := c.Call(ctx(t), "unread", nil, nil)
	var e *rpcclient.Error
	if err == nil || errors.As(err, &e) {
		t.Errorf("an unreadable error object: %#v", err)
	}
}

func TestMalformedMessagesAreIgnored(t *testing.T) {
	url := scripted(t, func(p *peer) {
		r, ok := p.read()
		if !ok {
			return
		}
		id := string(r.ID)
		for _, m := range []string{
			`not json`, `{`, ``, `[]`, `null`, `"text"`,
			`[{"jsonrpc":"2.0","result":"batch","id":` + id + `}]`,
			`{"jsonrpc":"2.0","result":"truncated`,
			`{"jsonrpc":"2.0","result":"someone else's","id":99999}`,
			`{"jsonrpc":"2.0","result":"string id","id":"` + id + `"}`,
			`{"jsonrpc":"2.0","result":"negative id","id":-1}`,
			`{"jsonrpc":"2.0","result":"fraction","id":0.5}`,
			`{"jsonrpc":"2.0","result":"huge","id":184467440737095516150}`,
			`{"jsonrpc":"2.0","id":` + id + `}`, // neither result nor error
			`{"jsonrpc":"2.0","error":null,"id":` + id + `}`,
			`{"jsonrpc":"2.0","method":"server_asks","params":[],"id":` + id + `}`,
			`{"jsonrpc":"2.0","method":"other_notification","params":{"subscription":"` + opHash + `","result":"Ready"}}`,
			`{"jsonrpc":"2.0","method":"` + trustedrpc.WatchNotification + `","params":"nope"}`,
			`{"jsonrpc":"2.0","method":"` + trustedrpc.WatchNotification + `","params":null}`,
			`{"jsonrpc":"2.0","method":"` + trustedrpc.WatchNotification + `","params":{"subscription":"` + opHash + `","result":{"Bogus":"x"}}}`,
			`{"jsonrpc":"2.0","method":"` + trustedrpc.WatchNotification + `","params":{"subscription":"` + opHash + `","result":{"Finalized":"0xnothex"}}}`,
		} {
			p.write(m)
		}
		p.c.WriteMessage(ws.BinaryMessage, []byte{0xff, 0x00, 0x7b})
		p.answer(r.ID, `"`+opHash+`"`)
		p.notify(opHash, `{"Finalized":"`+blockHash+`"}`)
		// The server's request got no answer: the next message is the
		// client's next call.
		if r, ok := p.read(); ok {
			if r.Method != "next" {
				t.Errorf("the client sent %s %s", r.Method, r.ID)
			}
			p.answer(r.ID, `"fine"`)
		}
		p.waitForClose()
	})
	c := dialInsecure(t, url)
	h, ch, err := c.SubmitAndWatchOperation(ctx(t), shard, []byte{1})
	if err != nil || h != opHash {
		t.Fatalf("SubmitAndWatchOperation = %q, %v", h, err)
	}
	if got := drain(t, ch); fmt.Sprint(got) != fmt.Sprint([]rpc.Status{final}) {
		t.Fatalf("statuses %v", got)
	}
	if s, err := c.String(ctx(t), "next"); err != nil || s != "fine" {
		t.Fatalf("the call after the malformed messages: %q, %v", s, err)
	}
}

// The validateer's server writes its notifications and results exactly as
// the client's fast path expects them.
func TestTheServersMessagesTakeTheFastPath(t *testing.T) {
	b := &backend{statuses: []rpc.Status{{Kind: rpc.Submitted}, {Kind: rpc.Future}, {Kind: rpc.Ready},
		{Kind: rpc.InSidechainBlock, BlockHash: sidechain.Hash{0xA1}}, {Kind: rpc.Retracted}, {Kind: rpc.Ready},
		inBlock, {Kind: rpc.Invalid, Reason: "stale nonce"}}}
	url := serve(t, b)
	d := ws.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // a test server
	wc, _, err := d.DialContext(ctx(t), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	for _, req := range []string{
		`{"jsonrpc":"2.0","id":7,"method":"author_submitAndWatchTrustedOperation","params":["` + shard.String() + `","0x01"]}`,
		`{"jsonrpc":"2.0","id":8,"method":"author_submitAndWatchTrustedOperations","params":["` + shard.String() + `",["0x02","0x"]]}`,
		`{"jsonrpc":"2.0","id":9,"method":"system_version","params":[]}`,
	} {
		if err := wc.WriteMessage(ws.TextMessage, []byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	wc.SetReadDeadline(time.Now().Add(5 * time.Second))
	answers, finals := 0, 0
	for answers < 3 || finals < 2 {
		_, msg, err := wc.ReadMessage()
		if err != nil {
			t.Fatalf("after %d answers and %d final statuses: %v", answers, finals, err)
		}
		if !rpcclient.DecodesFast(msg) {
			t.Errorf("the slow path for %s", msg)
		}
		switch {
		case strings.Contains(string(msg), `"Invalid"`):
			finals++
		case strings.Contains(string(msg), `"id"`):
			answers++
		}
	}
}

func TestConcurrentCallsGetTheirOwnAnswers(t *testing.T) {
	const calls = 20
	url := scripted(t, func(p *peer) {
		var rs []request
		for range calls {
			r, ok := p.read()
			if !ok {
				return
			}
			rs = append(rs, r)
		}
		for i := len(rs) - 1; i >= 0; i-- { // the last first
			p.answer(rs[i].ID, string(rs[i].Params))
		}
		p.waitForClose()
	})
	c := dialInsecure(t, url)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []int
			if err := c.Call(ctx(t), "echo", []any{i, i * i}, &out); err != nil || len(out) != 2 || out[0] != i || out[1] != i*i {
				t.Errorf("call %d: %v, %v", i, out, err)
			}
		}()
	}
	wg.Wait()
}

// BenchmarkNotifications is the client's cost of one watch notification
// from the wire to its watch channel, with the server's writes (same
// process) included.
func BenchmarkNotifications(b *testing.B) {
	url := scripted(b, func(p *peer) {
		r, ok := p.read()
		if !ok {
			return
		}
		p.answer(r.ID, `"`+opHash+`"`)
		statuses := []string{`"Ready"`, `{"InSidechainBlock":"` + blockHash + `"}`, `"Retracted"`}
		for i := range b.N {
			p.notify(opHash, statuses[i%len(statuses)])
		}
		p.notify(opHash, `{"Finalized":"`+blockHash+`"}`)
		p.waitForClose()
	})
	c, err := rpcclient.Dial(context.Background(), url, rpcclient.Options{Insecure: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	b.ResetTimer()
	_, ch, err := c.SubmitAndWatchOperation(context.Background(), shard, []byte{1})
	if err != nil {
		b.Fatal(err)
	}
	for s := range ch {
		if s.Final() {
			return
		}
	}
	b.Fatal("no final status")
}
