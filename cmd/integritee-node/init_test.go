package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/node"
)

type initGenesis struct {
	Balances balances.Genesis `json:"balances"`
	Sudo     sudo.Genesis     `json:"sudo"`
	Teerex   teerex.Genesis   `json:"teerex"`
}

// runInit runs `integritee-node init --validators 1 --base-path DIR args...`
// and returns node0's genesis app state, or the command's error.
func runInit(t *testing.T, args ...string) (initGenesis, string, error) {
	t.Helper()
	dir := t.TempDir()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(append([]string{"init", "--validators", "1", "--base-path", dir, "--base-prometheus-port", "0"}, args...))
	if err := cmd.Execute(); err != nil {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("init %v failed (%v) but wrote %d entries", args, err, len(entries))
		}
		return initGenesis{}, errb.String(), err
	}
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(dir, "node0", "comet", "config", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g initGenesis
	if err := json.Unmarshal(doc.AppState, &g); err != nil {
		t.Fatal(err)
	}
	return g, errb.String(), nil
}

func devAccount(t *testing.T, uri string) account.ID {
	t.Helper()
	p, err := account.DevPair(uri)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID()
}

func TestInitIsSecureByDefault(t *testing.T) {
	sudoID, rich := account.ID{0xaa, 1}, account.ID{0xbb, 2}
	g, stderr, err := runInit(t, "--sudo", sudoID.String(), "--endow", rich.String()+"=1000000000000000", "--endow", sudoID.Hex()+"=5000000000")
	if err != nil {
		t.Fatal(err)
	}
	if g.Teerex.SecurityFlags != (teerex.SecurityFlags{}) {
		t.Errorf("default init flags %+v, want skip, sim and debug forbidden", g.Teerex.SecurityFlags)
	}
	if g.Sudo.Key == nil || *g.Sudo.Key != sudoID {
		t.Errorf("default init sudo %v, want %s", g.Sudo.Key, sudoID)
	}
	want := []string{rich.String() + " 1000000000000000", sudoID.String() + " 5000000000"}
	var got []string
	for _, e := range g.Balances.Balances {
		got = append(got, e.Account.String()+" "+e.Amount.String())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("default init endowments %v, want exactly %v (no dev account)", got, want)
	}
	if !strings.Contains(stderr, "secure genesis") || strings.Contains(stderr, "no endowment") {
		t.Errorf("init stderr: %s", stderr)
	}
	// The deprecated --secure is a no-op alias of the default.
	if g2, stderr, err := runInit(t, "--secure", "--sudo", sudoID.String(), "--endow", rich.String()+"=1"); err != nil || g2.Teerex.SecurityFlags != (teerex.SecurityFlags{}) {
		t.Errorf("init --secure: %v %+v", err, g2.Teerex.SecurityFlags)
	} else if !strings.Contains(stderr, "has no endowment") {
		t.Errorf("init stderr lacks the note on the unfunded sudo account: %s", stderr)
	}
}

func TestInitDevIsTodaysPermissiveGenesis(t *testing.T) {
	g, _, err := runInit(t, "--dev")
	if err != nil {
		t.Fatal(err)
	}
	if g.Teerex.SecurityFlags != (teerex.SecurityFlags{AllowSkip: true, AllowSim: true, AllowDebug: true}) {
		t.Errorf("init --dev flags %+v, want all allowed", g.Teerex.SecurityFlags)
	}
	if g.Sudo.Key == nil || *g.Sudo.Key != devAccount(t, "//Alice") {
		t.Errorf("init --dev sudo %v, want //Alice", g.Sudo.Key)
	}
	if len(g.Balances.Balances) != len(node.DevFunded) {
		t.Fatalf("init --dev funds %d accounts, want %v", len(g.Balances.Balances), node.DevFunded)
	}
	for i, uri := range node.DevFunded {
		if e := g.Balances.Balances[i]; e.Account != devAccount(t, uri) || e.Amount.Cmp(node.DevEndowment) != 0 {
			t.Errorf("init --dev endowment %d %+v, want %s %s", i, e, uri, node.DevEndowment)
		}
	}
	// The same options as the in-process dev genesis.
	want, _ := node.AppState(node.GenesisOptions{})
	got, _ := node.AppState(mustGenesisOptions(t, true, "", nil))
	if !bytes.Equal(want, got) {
		t.Errorf("init --dev app state\n%s\nwant\n%s", got, want)
	}
}

func mustGenesisOptions(t *testing.T, dev bool, sudo string, endow []string) node.GenesisOptions {
	t.Helper()
	o, err := genesisOptions(dev, sudo, endow)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestInitRefusesBadSudoAndEndow(t *testing.T) {
	ok := account.ID{7}.String()
	alice := devAccount(t, "//Alice").String()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no sudo", []string{"--endow", ok + "=1"}, "--sudo ACCOUNT is required"},
		{"no endowment", []string{"--sudo", ok}, "--endow ACCOUNT=AMOUNT is required"},
		{"dev seed as sudo", []string{"--sudo", "//Alice", "--endow", ok + "=1"}, `--sudo: "//Alice" is not an account`},
		{"bad SS58 sudo", []string{"--sudo", "5NotAnAddress", "--endow", ok + "=1"}, `--sudo: "5NotAnAddress" is not an account`},
		{"short hex sudo", []string{"--sudo", "0x1234", "--endow", ok + "=1"}, "--sudo: \"0x1234\" is not an account"},
		{"//Alice's address as sudo", []string{"--sudo", alice, "--endow", ok + "=1"}, "dev account //Alice"},
		{"endow without =", []string{"--sudo", ok, "--endow", ok}, "want ACCOUNT=AMOUNT"},
		{"endow bad account", []string{"--sudo", ok, "--endow", "bob=1"}, `--endow: "bob" is not an account`},
		{"endow TEER decimals", []string{"--sudo", ok, "--endow", ok + "=1.5"}, "not a whole number of planck"},
		{"endow negative", []string{"--sudo", ok, "--endow", ok + "=-1"}, "not a whole number of planck"},
		{"endow zero", []string{"--sudo", ok, "--endow", ok + "=0"}, "amount is zero"},
		{"endow over 2^128", []string{"--sudo", ok, "--endow", ok + "=340282366920938463463374607431768211456"}, "not a whole number of planck"},
		{"endow twice", []string{"--sudo", ok, "--endow", ok + "=1", "--endow", ok + "=2"}, "endowed twice"},
		{"endow a dev account", []string{"--sudo", ok, "--endow", alice + "=1"}, "dev account //Alice"},
		{"dev with bad endow", []string{"--dev", "--endow", "x=1"}, `--endow: "x" is not an account`},
		{"secure and dev", []string{"--dev", "--secure"}, "contradicts --dev"},
	} {
		_, _, err := runInit(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: init %v: error %v, want %q", c.name, c.args, err, c.want)
		}
	}
}
