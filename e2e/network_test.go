package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
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
	out, err := exec.Command(filepath.Join(binDir, "integritee-node"), "init",
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
	if got := nodes[2].balance(t, "//Ferdie"); got != "3000" {
		t.Errorf("//Ferdie has %s on node2, want 3000", got)
	}

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
