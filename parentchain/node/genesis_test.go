package node

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/types"
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

// appState decodes the sections of an app state the tests look at.
type appState struct {
	Balances balances.Genesis `json:"balances"`
	Sudo     sudo.Genesis     `json:"sudo"`
	Teerex   teerex.Genesis   `json:"teerex"`
}

func decodeAppState(t *testing.T, st json.RawMessage) appState {
	t.Helper()
	var a appState
	if err := json.Unmarshal(st, &a); err != nil {
		t.Fatalf("app state %s: %v", st, err)
	}
	return a
}

func devID(t *testing.T, uri string) account.ID {
	t.Helper()
	p, err := account.DevPair(uri)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID()
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
	a := decodeAppState(t, st)
	if f := a.Teerex.SecurityFlags; f != (teerex.SecurityFlags{AllowSkip: true, AllowSim: true, AllowDebug: true}) {
		t.Errorf("dev flags %+v, want all allowed", f)
	}
	if a.Sudo.Key == nil || *a.Sudo.Key != devID(t, "//Alice") {
		t.Errorf("dev sudo %v, want //Alice", a.Sudo.Key)
	}
	if len(a.Balances.Balances) != len(DevFunded) {
		t.Errorf("dev genesis funds %d accounts, want %d", len(a.Balances.Balances), len(DevFunded))
	}
	for i, uri := range DevFunded {
		if e := a.Balances.Balances[i]; e.Account != devID(t, uri) || e.Amount.Cmp(DevEndowment) != 0 {
			t.Errorf("dev endowment %d = %+v, want %s with %s", i, e, uri, DevEndowment)
		}
	}
}

func TestSecureGenesisHasOnlyTheNamedSudoAndEndowments(t *testing.T) {
	sudoID := account.ID{1, 2, 3}
	rich := account.ID{9}
	opts := GenesisOptions{Secure: true, Sudo: &sudoID, Endowments: []balances.Endowment{
		{Account: sudoID, Amount: types.NewBalance(5)},
		{Account: rich, Amount: types.TEER(7)},
	}}
	st, err := AppState(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st), `"allow_skip":false,"allow_sim":false,"allow_debug":false`) {
		t.Errorf("secure genesis allows skip, sim or debug: %s", st)
	}
	a := decodeAppState(t, st)
	if a.Teerex.SecurityFlags != (teerex.SecurityFlags{}) {
		t.Errorf("secure flags %+v, want all forbidden", a.Teerex.SecurityFlags)
	}
	if a.Sudo.Key == nil || *a.Sudo.Key != sudoID {
		t.Errorf("secure sudo %v, want %s", a.Sudo.Key, sudoID)
	}
	if len(a.Balances.Balances) != 2 || a.Balances.Balances[0] != opts.Endowments[0] || a.Balances.Balances[1] != opts.Endowments[1] {
		t.Errorf("secure balances %+v, want exactly %+v", a.Balances.Balances, opts.Endowments)
	}
	for _, uri := range DevAccounts {
		if strings.Contains(string(st), devID(t, uri).String()) {
			t.Errorf("secure genesis names the dev account %s: %s", uri, st)
		}
	}
	if a.Balances.TxFee.Cmp(DevTxFee) != 0 {
		t.Errorf("secure fee %s, want %s", a.Balances.TxFee, DevTxFee)
	}

	// A dev genesis takes the named sudo and endowments on top of its own.
	d := decodeAppState(t, mustAppState(t, GenesisOptions{Sudo: &sudoID, Endowments: opts.Endowments[1:]}))
	if *d.Sudo.Key != sudoID || len(d.Balances.Balances) != len(DevFunded)+1 || d.Balances.Balances[len(DevFunded)] != opts.Endowments[1] {
		t.Errorf("dev genesis with --sudo/--endow: sudo %s balances %+v", d.Sudo.Key, d.Balances.Balances)
	}
}

func mustAppState(t *testing.T, o GenesisOptions) json.RawMessage {
	t.Helper()
	st, err := AppState(o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestGenesisOptionsRefused(t *testing.T) {
	s, other := account.ID{1}, account.ID{2}
	alice, ferdie := devID(t, "//Alice"), devID(t, "//Ferdie")
	one := []balances.Endowment{{Account: other, Amount: types.NewBalance(1)}}
	for _, c := range []struct {
		name string
		o    GenesisOptions
		want string
	}{
		{"secure without sudo", GenesisOptions{Secure: true, Endowments: one}, "needs a sudo key"},
		{"secure without endowments", GenesisOptions{Secure: true, Sudo: &s}, "at least one endowment"},
		{"secure with //Alice sudo", GenesisOptions{Secure: true, Sudo: &alice, Endowments: one}, "dev account //Alice"},
		{"secure endowing //Ferdie", GenesisOptions{Secure: true, Sudo: &s, Endowments: []balances.Endowment{{Account: ferdie, Amount: types.NewBalance(1)}}}, "dev account //Ferdie"},
		{"zero endowment", GenesisOptions{Secure: true, Sudo: &s, Endowments: []balances.Endowment{{Account: other}}}, "amount is zero"},
		{"account endowed twice", GenesisOptions{Secure: true, Sudo: &s, Endowments: append(one, one...)}, "endowed twice"},
		{"endowments overflow", GenesisOptions{Secure: true, Sudo: &s, Endowments: []balances.Endowment{{Account: s, Amount: types.MaxBalance}, {Account: other, Amount: types.NewBalance(1)}}}, "maximum balance"},
		{"dev plus an overflowing endowment", GenesisOptions{Endowments: []balances.Endowment{{Account: s, Amount: types.MaxBalance}}}, "maximum balance"},
	} {
		if _, err := AppState(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: AppState error %v, want %q", c.name, err, c.want)
		}
		dir := t.TempDir()
		if _, err := Init(dir, NetworkOptions{Validators: 1, ChainID: "c", Genesis: c.o}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Init error %v, want %q", c.name, err, c.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: Init wrote %d entries before refusing", c.name, len(entries))
		}
	}
}
