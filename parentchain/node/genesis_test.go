package node

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Regression: each home once got its own genesis time, so the nodes of one
// network disagreed on the genesis app hash and halted at height 1.
func TestInitWritesOneGenesisForAllNodes(t *testing.T) {
	cfgs, err := Init(t.TempDir(), NetworkOptions{Validators: 3, ChainID: "c", BaseRPCPort: 1000, BaseP2PPort: 2000})
	if err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(cfgs[0].genesisFile())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfgs[1:] {
		b, _ := os.ReadFile(c.genesisFile())
		if !bytes.Equal(b, first) {
			t.Fatalf("%s has another genesis than node0", c.BasePath)
		}
	}
	for i, c := range cfgs {
		if c.RPCPort != 1000+i || c.P2PPort != 2000+i || c.PrometheusPort != 0 {
			t.Errorf("node%d ports %d %d %d", i, c.RPCPort, c.P2PPort, c.PrometheusPort)
		}
		if len(c.PersistentPeers) != 2 {
			t.Errorf("node%d peers %v", i, c.PersistentPeers)
		}
		for _, p := range c.PersistentPeers {
			if strings.HasSuffix(p, ":"+strconv.Itoa(c.P2PPort)) {
				t.Errorf("node%d lists itself as a peer", i)
			}
		}
		loaded, err := LoadConfig(c.BasePath)
		if err != nil || loaded.RPCPort != c.RPCPort {
			t.Errorf("node%d config does not load back: %v", i, err)
		}
	}
	if _, err := Init(t.TempDir(), NetworkOptions{Validators: 0, ChainID: "c"}); err == nil {
		t.Error("zero validators accepted")
	}
}

func TestDevGenesisFundsDevAccounts(t *testing.T) {
	st, err := AppState(GenesisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"allow_sim":true`, `"tx_fee":"1000000000"`, `"1000000000000000"`} {
		if !strings.Contains(string(st), want) {
			t.Errorf("dev app state lacks %s: %s", want, st)
		}
	}
	sec, _ := AppState(GenesisOptions{Secure: true})
	if !strings.Contains(string(sec), `"allow_skip":false,"allow_sim":false,"allow_debug":false`) {
		t.Errorf("secure genesis allows simulation: %s", sec)
	}
}
