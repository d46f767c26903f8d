package e2e

import (
	"crypto/rand"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/types"
)

// TestNetworkSurvivesOneNodeDown starts the smallest network that tolerates
// a failed validator (CometBFT needs more than 2/3 of the voting power, so
// n >= 3f+1: four nodes for one failure), kills one, checks that blocks go on,
// restarts it and checks that it catches up to the same app hashes.
func TestNetworkSurvivesOneNodeDown(t *testing.T) {
	const validators = 4
	dir := t.TempDir()
	bases := freePortRuns(t, 3, validators) // init numbers ports base+K
	rpcBase, p2pBase, promBase := bases[0], bases[1], bases[2]
	out, err := exec.Command(filepath.Join(binDir, "integritee-node"), "init", "--dev",
		"--validators", strconv.Itoa(validators), "--base-path", dir,
		"--base-rpc-port", strconv.Itoa(rpcBase), "--base-port", strconv.Itoa(p2pBase),
		"--base-prometheus-port", strconv.Itoa(promBase), "--block-time", "300ms").CombinedOutput()
	if err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	nodes := make([]*nodeProc, validators)
	startNode := func(i int) *nodeProc {
		home := filepath.Join(dir, fmt.Sprintf("node%d", i))
		return &nodeProc{proc: start(t, "integritee-node", "--base-path", home), rpc: rpcBase + i, p2p: p2pBase + i, prom: promBase + i, basePath: home}
	}
	for i := range nodes {
		nodes[i] = startNode(i)
	}
	for _, n := range nodes {
		n.waitHeight(t, 2, 60*time.Second)
	}
	nodes[0].mustCLI(t, t.TempDir(), "transfer", "//Alice", "//Ferdie", "1000")

	// One node down: the other three still hold > 2/3 and go on.
	nodes[3].stop(syscall.SIGKILL)
	h := nodes[0].height()
	nodes[0].waitHeight(t, h+5, 60*time.Second)
	nodes[1].mustCLI(t, t.TempDir(), "transfer", "//Bob", "//Ferdie", "2000")
	// Committed on node1; node2 applies the block a moment later (under
	// load, after the CLI has returned).
	waitFor(t, "//Ferdie to hold 3000 on node2", 30*time.Second, func() bool {
		return nodes[2].balance(t, "//Ferdie") == "3000"
	})

	// Back up: it replays what it missed.
	nodes[3] = startNode(3)
	target := nodes[0].height()
	nodes[3].waitHeight(t, target, 60*time.Second)
	if got := nodes[3].balance(t, "//Ferdie"); got != "3000" {
		t.Errorf("//Ferdie has %s on the restarted node, want 3000", got)
	}
	for _, hh := range []int64{1, h, target - 1} {
		want := nodes[0].appHashAt(t, hh)
		for i, n := range nodes[1:] {
			if got := n.appHashAt(t, hh); got != want {
				t.Errorf("node%d app hash after height %d = %s, node0 %s", i+1, hh, got, want)
			}
		}
	}
}

// startInitNode runs `integritee-node init --validators 1 initArgs...` and
// starts the one node, with a typed client.
func startInitNode(t *testing.T, initArgs ...string) *bridgeEnv {
	t.Helper()
	dir := t.TempDir()
	p := freePorts(t, 3)
	args := append([]string{"init", "--validators", "1", "--base-path", dir, "--base-rpc-port", strconv.Itoa(p[0]),
		"--base-port", strconv.Itoa(p[1]), "--base-prometheus-port", strconv.Itoa(p[2]), "--block-time", "300ms"}, initArgs...)
	out, err := exec.Command(filepath.Join(binDir, "integritee-node"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("init %v: %v\n%s", initArgs, err, out)
	}
	home := filepath.Join(dir, "node0")
	n := &nodeProc{proc: start(t, "integritee-node", "--base-path", home), rpc: p[0], p2p: p[1], prom: p[2], basePath: home}
	n.waitHeight(t, 2, 60*time.Second)
	c, err := client.Dial(fmt.Sprintf("http://127.0.0.1:%d", n.rpc))
	if err != nil {
		t.Fatal(err)
	}
	return &bridgeEnv{t: t, n: n, c: c, codec: types.NewCodec()}
}

func randomPair(t *testing.T) *account.Pair {
	t.Helper()
	seed := make([]byte, 32)
	rand.Read(seed)
	p, err := account.PairFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestInitNetworkSecureByDefault: a network from a plain `init` refuses a
// simulated registration, funds no dev account and has the named sudo key;
// one from `init --dev` accepts the same registration.
func TestInitNetworkSecureByDefault(t *testing.T) {
	t.Parallel()
	mr := mrenclaveOf("init secure")
	simRegister := func(e *bridgeEnv, p *account.Pair) error {
		_, err := e.submit(p, e.call(teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{
			Proof: sim.NewQuote(mr, false, bind(p.ID()), time.Now()), URL: "wss://e", Method: sim.Method}))
		return err
	}

	t.Run("secure", func(t *testing.T) {
		t.Parallel()
		// Without --sudo and --endow the secure init refuses to write anything.
		out, err := exec.Command(filepath.Join(binDir, "integritee-node"), "init", "--base-path", t.TempDir()).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--sudo ACCOUNT is required") {
			t.Errorf("init without --sudo: %v\n%s", err, out)
		}
		root, enc := randomPair(t), randomPair(t)
		e := startInitNode(t, "--sudo", root.ID().String(),
			"--endow", root.ID().String()+"=1000000000000", "--endow", enc.ID().Hex()+"=1000000000000")
		if f := e.flags(); f != (teerex.SecurityFlags{}) {
			t.Errorf("secure init network flags %+v, want all forbidden", f)
		}
		var key struct {
			Key *account.ID `json:"key"`
		}
		e.n.query(t, "/sudo/key", &key)
		if key.Key == nil || *key.Key != root.ID() {
			t.Errorf("sudo key %v, want %s", key.Key, root.ID())
		}
		if a := e.account(mustDevPair(t, "//Alice").ID()); !a.Free.IsZero() {
			t.Errorf("//Alice holds %s on a secure init network", a.Free)
		}
		wantTxErr(t, "sim registration on a secure init network", simRegister(e, enc), teerex.ErrMethodNotAllowed)
		if got := e.enclaves(); len(got) != 0 {
			t.Errorf("enclaves registered: %+v", got)
		}
	})

	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		e := startInitNode(t, "--dev")
		if err := simRegister(e, mustDevPair(t, "//Bob")); err != nil {
			t.Fatalf("sim registration on an init --dev network: %v", err)
		}
		if got := e.enclaves(); len(got) != 1 || got[0].Signer != mustDevPair(t, "//Bob").ID() {
			t.Errorf("enclaves after a sim registration: %+v", got)
		}
	})
}
