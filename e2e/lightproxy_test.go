package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/types"
)

// TestLightProxy shows that CometBFT's own light client, the unmodified
// `cometbft light` proxy of the version go.mod pins, verifies the node's
// state proofs: a proven abci_query of //Alice's account answers the same
// account the node's JSON query does, and the same query through a node
// whose abci_query answers are tampered with (a flipped value byte, a stale
// height) is refused.
func TestLightProxy(t *testing.T) {
	cometbft := buildCometBFT(t)
	n := startDevNode(t, "")
	n.waitHeight(t, 4, 30*time.Second)

	chainID := n.chainID(t)
	trusted := n.blockHash(t, 1)
	node := fmt.Sprintf("http://127.0.0.1:%d", n.rpc)

	alice := mustDevPair(t, "//Alice").ID()
	key := append([]byte("balances/acct/"), alice[:]...)
	const path = "/store/balances/key"

	// 1. A light proxy straight onto the node (also its own witness).
	direct := startLightProxy(t, cometbft, "light-direct", chainID, node, node, trusted)

	res, rerr, err := proxyQuery(direct, path, key, 0)
	if err != nil || rerr != nil {
		t.Fatalf("verified abci_query %s through the light proxy: %v %+v; the node itself answers: %s", path, err, rerr, n.rawProven(path, key))
	}
	q := decodeProvenAnswer(t, res)
	if q.Code != 0 {
		t.Fatalf("verified abci_query: code %d (%s): %s", q.Code, q.Codespace, q.Log)
	}
	if !bytes.Equal(q.Key, key) {
		t.Fatalf("verified abci_query: key %x, want %x", q.Key, key)
	}
	if q.Height <= 0 {
		t.Fatalf("verified abci_query: height %d", q.Height)
	}
	if q.ProofOps == nil || len(q.ProofOps.Ops) != 2 || q.ProofOps.Ops[0].Type != "simple:v" || q.ProofOps.Ops[1].Type != "simple:v" {
		t.Errorf("verified abci_query: proof ops %+v, want two simple:v ops", q.ProofOps)
	}
	var stored balances.Account
	if err := types.NewCodec().Unmarshal(q.Value, &stored); err != nil {
		t.Fatalf("verified abci_query: value %x is not a canonical CBOR account: %v", q.Value, err)
	}
	if stored.Free.IsZero() {
		t.Fatalf("verified abci_query: //Alice has no free balance on a dev chain: %+v", stored)
	}

	// The unproven JSON query answers for the node's latest committed
	// height L; once header L+1 exists, the light proxy verifies a proven
	// query at exactly L, and both must answer the same account.
	js, l := n.account(t, alice.String())
	n.waitHeight(t, l+1, 10*time.Second)
	res, rerr, err = proxyQuery(direct, path, key, l)
	if err != nil || rerr != nil {
		t.Fatalf("verified abci_query %s at height %d: %v %+v; the node itself answers: %s", path, l, err, rerr, n.rawProven(path, key))
	}
	at := decodeProvenAnswer(t, res)
	if at.Code != 0 || at.Height != l || !bytes.Equal(at.Key, key) {
		t.Fatalf("verified abci_query at height %d: code %d (%s), height %d, key %x", l, at.Code, at.Log, at.Height, at.Key)
	}
	var atL balances.Account
	if err := types.NewCodec().Unmarshal(at.Value, &atL); err != nil {
		t.Fatalf("verified abci_query at height %d: value %x: %v", l, at.Value, err)
	}
	if js.Account != alice || js.Free != atL.Free || js.Nonce != atL.Nonce {
		t.Errorf("at height %d: proven %+v, JSON query %+v", l, atL, js)
	}
	t.Logf("light proxy verified //Alice at heights %d and %d: free %s planck, nonce %d", q.Height, l, atL.Free, atL.Nonce)

	// 2. A second light proxy whose primary is a tampering reverse proxy in
	// front of the node; the node itself stays the witness, so headers,
	// commits and validators are cross-checked against the real thing.
	tp := newTamperProxy(t, node)
	tampered := startLightProxy(t, cometbft, "light-tampered", chainID, tp.srv.URL, node, trusted)

	// Control: passed through untouched, the answer verifies here too.
	if res, rerr, err := proxyQuery(tampered, path, key, 0); err != nil || rerr != nil {
		t.Fatalf("untampered query through the tampering proxy: %v %+v", err, rerr)
	} else if c := decodeProvenAnswer(t, res); c.Code != 0 || !bytes.Equal(c.Key, key) || c.Height < q.Height {
		t.Fatalf("untampered query through the tampering proxy: %+v", c)
	}

	refused := func(what string, mode int32) {
		t.Helper()
		before := tp.tampered.Load()
		tp.mode.Store(mode)
		defer tp.mode.Store(tamperNone)
		res, rerr, err := proxyQuery(tampered, path, key, 0)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if tp.tampered.Load() == before {
			t.Fatalf("%s: the tampering proxy rewrote no abci_query answer", what)
		}
		if rerr == nil {
			t.Fatalf("%s: the light proxy accepted the tampered answer: %s", what, res)
		}
		msg := rerr.Message + " " + rerr.Data
		if !strings.Contains(strings.ToLower(msg), "proof") {
			t.Fatalf("%s: refused, but not for the proof: %s", what, msg)
		}
		t.Logf("%s: refused: %s", what, msg)
	}

	// 3. One byte of the value flipped.
	refused("flipped value byte", tamperValue)

	// 4. The answer claims the height before the one it was proven at, so
	// the light client checks it against the previous app hash. That only
	// means something if the state changed in between: the app hash of the
	// claimed height must differ from the proven one's.
	refused("stale height", tamperHeight)
	h := tp.lastHeight.Load()
	if h < 2 {
		t.Fatalf("stale height: the node answered for height %d", h)
	}
	if prev, cur := n.appHashAt(t, h-1), n.appHashAt(t, h); prev == cur {
		t.Fatalf("stale height: app hash after %d equals app hash after %d (%s); the refusal proves nothing", h-1, h, cur)
	}

	// The light proxies still work after refusing: a clean query verifies.
	if _, rerr, err := proxyQuery(tampered, path, key, 0); err != nil || rerr != nil {
		t.Fatalf("query after the tampering stopped: %v %+v", err, rerr)
	}
}

// buildCometBFT builds CometBFT's command from the module cache at the
// version our go.mod pins (tools.go keeps its dependencies in go.sum). The
// binary goes to a fixed place in the user's cache directory so that later
// runs skip the link: go build relinks only when the binary there is stale.
func buildCometBFT(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if cache, err := os.UserCacheDir(); err == nil {
		if d := filepath.Join(cache, "integritee-e2e"); os.MkdirAll(d, 0o700) == nil {
			dir = d
		}
	}
	out := filepath.Join(dir, "cometbft")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/cometbft/cometbft/cmd/cometbft")
	cmd.Dir = ".." // the module root: our go.mod pins the version
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build github.com/cometbft/cometbft/cmd/cometbft: %v\n%s", err, b)
	}
	t.Logf("built %s in %s", out, time.Since(began).Round(time.Millisecond))
	return out
}

// startLightProxy starts `cometbft light` with a fresh home, trusting the
// header at height 1 with the given hash, and waits until it serves RPC.
// It returns the proxy's port.
func startLightProxy(t *testing.T, cometbft, name, chainID, primary, witness, trustedHash string) int {
	t.Helper()
	port := freePorts(t, 1)[0]
	home := t.TempDir()
	p := startExe(t, name, cometbft, "light", chainID,
		"--primary", primary, "--witnesses", witness,
		"--height", "1", "--hash", trustedHash,
		"--trusting-period", "168h",
		"--laddr", fmt.Sprintf("tcp://127.0.0.1:%d", port),
		"--home-dir", filepath.Join(home, "light"), "--home", home)
	waitFor(t, name+" to serve RPC", 20*time.Second, func() bool {
		if isDone(p) {
			t.Fatalf("%s exited", name)
		}
		_, rerr, err := rpcCall(port, "health", map[string]any{})
		return err == nil && rerr == nil
	})
	return port
}

// provenAnswer is an abci_query response as CometBFT's JSON encodes it.
type provenAnswer struct {
	Code      uint32 `json:"code"`
	Codespace string `json:"codespace"`
	Log       string `json:"log"`
	Key       []byte `json:"key"`
	Value     []byte `json:"value"`
	Height    int64  `json:"height,string"`
	ProofOps  *struct {
		Ops []struct {
			Type string `json:"type"`
			Key  []byte `json:"key"`
			Data []byte `json:"data"`
		} `json:"ops"`
	} `json:"proofOps"`
}

// proxyQuery asks a light proxy for a proven abci_query of key.
func proxyQuery(port int, path string, key []byte, height int64) (json.RawMessage, *rpcError, error) {
	return rpcCall(port, "abci_query", map[string]any{
		"path": path, "data": hex.EncodeToString(key),
		"height": strconv.FormatInt(height, 10), "prove": true,
	})
}

func decodeProvenAnswer(t *testing.T, res json.RawMessage) provenAnswer {
	t.Helper()
	var r struct {
		Response provenAnswer `json:"response"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		t.Fatalf("decode abci_query answer %s: %v", res, err)
	}
	return r.Response
}

// rawProven describes the node's own answer to a proven query, for
// failure messages.
func (n *nodeProc) rawProven(path string, key []byte) string {
	res, rerr, err := proxyQuery(n.rpc, path, key, 0)
	if err != nil || rerr != nil {
		return fmt.Sprintf("error %v %+v", err, rerr)
	}
	var r struct {
		Response json.RawMessage `json:"response"`
	}
	json.Unmarshal(res, &r)
	return string(r.Response)
}

// chainID returns the node's chain id from /status.
func (n *nodeProc) chainID(t *testing.T) string {
	t.Helper()
	res, rerr, err := rpcCall(n.rpc, "status", map[string]any{})
	if err != nil || rerr != nil {
		t.Fatalf("status: %v %v", err, rerr)
	}
	var st struct {
		NodeInfo struct {
			Network string `json:"network"`
		} `json:"node_info"`
	}
	if err := json.Unmarshal(res, &st); err != nil || st.NodeInfo.Network == "" {
		t.Fatalf("status %s: no chain id (%v)", res, err)
	}
	return st.NodeInfo.Network
}

// account runs the unproven JSON query of an account and returns the
// answer and the height the node says it answered for.
func (n *nodeProc) account(t *testing.T, acct string) (balances.AccountInfo, int64) {
	t.Helper()
	path := "/balances/account/" + acct
	res, rerr, err := rpcCall(n.rpc, "abci_query", map[string]any{"path": path})
	if err != nil || rerr != nil {
		t.Fatalf("abci_query %s: %v %v", path, err, rerr)
	}
	q := decodeProvenAnswer(t, res)
	if q.Code != 0 {
		t.Fatalf("abci_query %s: code %d: %s", path, q.Code, q.Log)
	}
	var a balances.AccountInfo
	if err := json.Unmarshal(q.Value, &a); err != nil {
		t.Fatalf("abci_query %s: %s: %v", path, q.Value, err)
	}
	return a, q.Height
}

// Tamper modes.
const (
	tamperNone int32 = iota
	tamperValue
	tamperHeight
)

// tamperProxy passes everything to the node unchanged except abci_query
// answers, which it rewrites as mode says.
type tamperProxy struct {
	srv        *httptest.Server
	mode       atomic.Int32
	tampered   atomic.Int32 // answers rewritten
	lastHeight atomic.Int64 // the height of the last answer rewritten, as the node sent it
}

type abciQueryCtxKey struct{}

func newTamperProxy(t *testing.T, node string) *tamperProxy {
	t.Helper()
	target, err := url.Parse(node)
	if err != nil {
		t.Fatal(err)
	}
	tp := &tamperProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			if !isABCIQuery(pr.Out) {
				return
			}
			pr.Out = pr.Out.WithContext(context.WithValue(pr.Out.Context(), abciQueryCtxKey{}, true))
			pr.Out.Header.Del("Accept-Encoding") // an answer we can read
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Context().Value(abciQueryCtxKey{}) == nil {
				return nil
			}
			mode := tp.mode.Load()
			if mode == tamperNone {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if nb, h, ok := tamperAnswer(b, mode); ok {
				b = nb
				tp.lastHeight.Store(h)
				tp.tampered.Add(1)
			}
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		},
	}
	tp.srv = httptest.NewServer(rp)
	t.Cleanup(tp.srv.Close)
	return tp
}

// isABCIQuery reports whether r is a JSON-RPC (POST) or URI (GET)
// abci_query; it leaves r's body readable.
func isABCIQuery(r *http.Request) bool {
	if r.Method == http.MethodGet {
		return strings.TrimPrefix(r.URL.Path, "/") == "abci_query"
	}
	if r.Body == nil {
		return false
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	if err != nil {
		return false
	}
	var m struct {
		Method string `json:"method"`
	}
	return json.Unmarshal(b, &m) == nil && m.Method == "abci_query"
}

// tamperAnswer rewrites a JSON-RPC abci_query answer: tamperValue flips a
// bit of the last byte of response.value, tamperHeight decreases
// response.height by one. It returns the node's height and whether it
// rewrote anything.
func tamperAnswer(b []byte, mode int32) ([]byte, int64, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var msg map[string]any
	if dec.Decode(&msg) != nil {
		return b, 0, false
	}
	result, _ := msg["result"].(map[string]any)
	resp, _ := result["response"].(map[string]any)
	if resp == nil {
		return b, 0, false
	}
	hs, _ := resp["height"].(string)
	h, err := strconv.ParseInt(hs, 10, 64)
	if err != nil {
		return b, 0, false
	}
	switch mode {
	case tamperValue:
		vs, _ := resp["value"].(string)
		v, err := base64.StdEncoding.DecodeString(vs)
		if err != nil || len(v) == 0 {
			return b, 0, false
		}
		v[len(v)-1] ^= 1
		resp["value"] = base64.StdEncoding.EncodeToString(v)
	case tamperHeight:
		resp["height"] = strconv.FormatInt(h-1, 10)
	default:
		return b, 0, false
	}
	out, err := json.Marshal(msg)
	if err != nil {
		return b, 0, false
	}
	return out, h, true
}
