package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/netutil"

	"github.com/integritee-go/integritee/jsonrpc"
)

// The node's RPC port is served by a front in front of CometBFT's own RPC
// server, which listens on a unix socket only the front reaches.
// CometBFT's server departs from JSON-RPC 2.0: it does not answer a
// request whose id is null (it takes it for a notification), truncates a
// fractional id (1.5 comes back as 1), answers an empty batch with
// nothing, a batch of non-objects ([1,2,3]) with one error, leaves out the
// invalid elements of a mixed batch, and answers an invalid request object
// without its id member. The front checks every POSTed message against the
// specification with package jsonrpc's rules (AnswerAll), answers what is
// invalid itself, and forwards the valid requests as one batch with ids
// CometBFT keeps (their indices), mapping the answers back to the ids the
// client sent, byte for byte. URI (GET) requests and websocket
// subscriptions pass through unchanged.
type rpcFront struct {
	socket string
	proxy  *httputil.ReverseProxy
	client *http.Client
}

func newRPCFront(socket string) *rpcFront {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	target := &url.URL{Scheme: "http", Host: "cometbft"}
	p := httputil.NewSingleHostReverseProxy(target)
	p.Transport = tr
	return &rpcFront{socket: socket, proxy: p, client: &http.Client{Transport: tr}}
}

// rpcSocket returns the path of CometBFT's RPC socket for base path dir:
// in its comet directory, or, where that path is too long for a unix
// socket, in the temporary directory under a name derived from it.
func rpcSocket(cometDir string) string {
	p := filepath.Join(cometDir, "rpc.sock")
	if len(p) < 100 {
		return p
	}
	h := sha256.Sum256([]byte(p))
	return filepath.Join(os.TempDir(), "integritee-node-"+hex.EncodeToString(h[:8])+".sock")
}

func (f *rpcFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" || strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		f.proxy.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRPCBodyBytes+1))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if len(body) > MaxRPCBodyBytes {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		fmt.Fprintf(w, `{"jsonrpc":"2.0","error":{"code":%d,"message":"Invalid Request: a message over %d bytes"},"id":null}`, jsonrpc.CodeInvalidRequest, MaxRPCBodyBytes)
		return
	}
	out := jsonrpc.AnswerAll(body, MaxRequestBatchSize, func(reqs []*jsonrpc.Request) []jsonrpc.Result {
		return f.forward(r.Context(), reqs)
	})
	if out == nil { // notifications only: no answer
		w.WriteHeader(http.StatusNoContent)
		return
	}
	_, _ = w.Write(out)
}

// forward sends reqs to CometBFT as one batch, request i with id i, and
// returns their results in order.
func (f *rpcFront) forward(ctx context.Context, reqs []*jsonrpc.Request) []jsonrpc.Result {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, r := range reqs {
		if i > 0 {
			b.WriteByte(',')
		}
		method, _ := json.Marshal(r.Method)
		b.WriteString(`{"jsonrpc":"2.0","id":`)
		b.WriteString(strconv.Itoa(i))
		b.WriteString(`,"method":`)
		b.Write(method)
		if r.Params != nil {
			b.WriteString(`,"params":`)
			b.Write(r.Params)
		}
		b.WriteByte('}')
	}
	b.WriteByte(']')
	out := make([]jsonrpc.Result, len(reqs))
	fail := func(err error) []jsonrpc.Result {
		for i := range out {
			out[i] = jsonrpc.Result{Err: jsonrpc.Errorf(jsonrpc.CodeInternalError, "Internal error: the node's RPC: %v", err)}
		}
		return out
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://cometbft/", &b)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := f.client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return fail(err)
	}
	var answers []struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *jsonrpc.Error  `json:"error"`
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		raw = append(append([]byte{'['}, t...), ']') // CometBFT answers a batch of one with an object
	}
	if err := json.Unmarshal(raw, &answers); err != nil {
		return fail(fmt.Errorf("answer %.200q: %w", raw, err))
	}
	got := make([]bool, len(reqs))
	for _, a := range answers {
		i, err := strconv.Atoi(string(a.ID))
		if err != nil || i < 0 || i >= len(reqs) {
			continue
		}
		got[i] = true
		if a.Error != nil {
			out[i] = jsonrpc.Result{Err: a.Error}
		} else {
			out[i] = jsonrpc.Result{Result: a.Result}
		}
	}
	for i, ok := range got {
		if !ok && !reqs[i].Notification() {
			out[i] = jsonrpc.Result{Err: jsonrpc.Errorf(jsonrpc.CodeInternalError, "Internal error: the node's RPC did not answer request %d", i)}
		}
	}
	return out
}

// serveFront serves the front on addr until it is closed.
func serveFront(srv *http.Server, ln net.Listener) error {
	return srv.Serve(netutil.LimitListener(ln, MaxRPCConnections))
}
