package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/types"
)

// DevChainID is the chain id of `integritee-node --dev`.
const DevChainID = "integritee-dev"

// DevEndowment is what each funded dev account starts with: 1,000 TEER.
var DevEndowment = types.TEER(1000)

// DevTxFee is the fee burned per transaction on dev and local chains:
// 0.001 TEER.
var DevTxFee = types.NewBalance(1_000_000_000)

// DevFunded are the dev accounts the development genesis funds; //Ferdie
// starts empty.
var DevFunded = []string{"//Alice", "//Bob", "//Charlie", "//Dave", "//Eve"}

// GenesisOptions shape the application state of a new chain.
//
// The zero value is the development genesis of `integritee-node --dev` and
// of in-process test chains: the dev accounts funded, //Alice sudo, skip and
// simulated attestation and debug enclaves allowed. A network anyone but
// its developer relies on sets Secure, names its sudo key and its
// endowments; `integritee-node init` does so unless given --dev.
type GenesisOptions struct {
	// Secure forbids unverified (skip) and simulated attestation and debug
	// enclaves from the first block, funds no dev account and needs Sudo and
	// Endowments: the dev accounts' keys are public, so a dev sudo key could
	// allow the forbidden attestation again.
	Secure bool
	// Sudo is the sudo key, the account with the root origin (security
	// flags, shard creation, set_balance). Required if Secure; on a dev
	// genesis it replaces //Alice.
	Sudo *account.ID
	// Endowments are the genesis balances. On a secure genesis they are the
	// only ones and at least one is required, since every transaction pays
	// a fee; on a dev genesis they come on top of the dev accounts'.
	Endowments []balances.Endowment
}

// DevAccounts are the well-known dev accounts //Alice ... //Ferdie, whose
// private keys anyone can derive from the public dev phrase.
var DevAccounts = []string{"//Alice", "//Bob", "//Charlie", "//Dave", "//Eve", "//Ferdie"}

// DevAccountName returns the dev seed ("//Alice") of id if id is one of
// DevAccounts.
func DevAccountName(id account.ID) (string, bool) {
	for _, uri := range DevAccounts {
		if p, err := account.DevPair(uri); err == nil && p.ID() == id {
			return uri, true
		}
	}
	return "", false
}

// Validate checks the options: a secure genesis needs a sudo key and at
// least one endowment, and neither may be a dev account; endowments must be
// positive, name each account once and sum to at most the maximum balance.
func (o GenesisOptions) Validate() error {
	if o.Secure {
		if o.Sudo == nil {
			return fmt.Errorf("node: a secure genesis needs a sudo key (the account with the root origin: security flags, shard creation)")
		}
		if name, ok := DevAccountName(*o.Sudo); ok {
			return fmt.Errorf("node: sudo %s is the dev account %s, whose key anyone can derive; name an account whose key you hold", *o.Sudo, name)
		}
		if len(o.Endowments) == 0 {
			return fmt.Errorf("node: a secure genesis needs at least one endowment: every transaction pays a fee of %s planck, so without funded accounts nothing can be sent", DevTxFee)
		}
	}
	seen := map[account.ID]bool{}
	var total types.Balance
	for _, e := range o.Endowments {
		if o.Secure {
			if name, ok := DevAccountName(e.Account); ok {
				return fmt.Errorf("node: endowment of %s: the dev account %s, whose key anyone can derive, on a secure genesis", e.Account, name)
			}
		}
		if e.Amount.IsZero() {
			return fmt.Errorf("node: endowment of %s: amount is zero", e.Account)
		}
		if seen[e.Account] {
			return fmt.Errorf("node: %s is endowed twice", e.Account)
		}
		seen[e.Account] = true
		var err error
		if total, err = total.Add(e.Amount); err != nil {
			return fmt.Errorf("node: endowments sum to more than the maximum balance (2^128-1 planck)")
		}
	}
	return nil
}

// AppState returns the genesis application state: the balances, the sudo
// key, the fee and the attestation security flags (see GenesisOptions).
func AppState(opts GenesisOptions) (json.RawMessage, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	bal := balances.Genesis{TxFee: DevTxFee}
	sudoKey := opts.Sudo
	if !opts.Secure {
		for _, uri := range DevFunded {
			p, err := account.DevPair(uri)
			if err != nil {
				return nil, err
			}
			bal.Balances = append(bal.Balances, balances.Endowment{Account: p.ID(), Amount: DevEndowment})
		}
		if sudoKey == nil {
			alice, err := account.DevPair("//Alice")
			if err != nil {
				return nil, err
			}
			id := alice.ID()
			sudoKey = &id
		}
	}
	bal.Balances = append(bal.Balances, opts.Endowments...)
	var total types.Balance
	for _, e := range bal.Balances {
		var err error
		if total, err = total.Add(e.Amount); err != nil {
			return nil, fmt.Errorf("node: genesis balances sum to more than the maximum balance (2^128-1 planck)")
		}
	}
	sections := map[string]any{
		balances.ModuleName: bal,
		sudo.ModuleName:     sudo.Genesis{Key: sudoKey},
	}
	addTeerexGenesis(sections, opts)
	return json.Marshal(sections)
}

// keys are a node's identity: its p2p key and its validator key.
type keys struct {
	nodeID string
	pv     *privval.FilePV
}

func genKeys(c Config) (keys, error) {
	for _, d := range []string{filepath.Dir(c.nodeKeyFile()), filepath.Dir(c.privValStateFile())} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return keys{}, fmt.Errorf("node: %w", err)
		}
	}
	nk, err := p2p.LoadOrGenNodeKey(c.nodeKeyFile())
	if err != nil {
		return keys{}, fmt.Errorf("node: node key: %w", err)
	}
	pv, err := privval.LoadOrGenFilePV(c.privValKeyFile(), c.privValStateFile(), func() (crypto.PrivKey, error) {
		return ed25519.GenPrivKey(), nil
	})
	if err != nil {
		return keys{}, fmt.Errorf("node: validator key: %w", err)
	}
	return keys{nodeID: string(nk.ID()), pv: pv}, nil
}

// newGenesis builds a genesis document; nodes of one network must share
// the very same document, genesis time included.
func newGenesis(chainID string, vals []cmttypes.GenesisValidator, appState json.RawMessage) (*cmttypes.GenesisDoc, error) {
	doc := &cmttypes.GenesisDoc{
		GenesisTime:     time.Now().UTC().Truncate(time.Millisecond),
		ChainID:         chainID,
		InitialHeight:   1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
		Validators:      vals,
		AppState:        appState,
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("node: genesis: %w", err)
	}
	return doc, nil
}

func saveGenesis(doc *cmttypes.GenesisDoc, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return doc.SaveAs(path)
}

func genesisValidator(k keys, name string) (cmttypes.GenesisValidator, error) {
	pub, err := k.pv.GetPubKey()
	if err != nil {
		return cmttypes.GenesisValidator{}, err
	}
	return cmttypes.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 10, Name: name}, nil
}

// EnsureDev prepares a development chain in c's base path unless one is
// there: keys, a one-validator genesis with the dev accounts, and node.json.
func EnsureDev(c Config) error {
	if c.hasGenesis() {
		return nil
	}
	k, err := genKeys(c)
	if err != nil {
		return err
	}
	v, err := genesisValidator(k, c.Moniker)
	if err != nil {
		return err
	}
	st, err := AppState(GenesisOptions{})
	if err != nil {
		return err
	}
	doc, err := newGenesis(DevChainID, []cmttypes.GenesisValidator{v}, st)
	if err != nil {
		return err
	}
	if err := saveGenesis(doc, c.genesisFile()); err != nil {
		return err
	}
	return c.Save()
}

// NetworkOptions shape a multi-node network written by Init.
type NetworkOptions struct {
	Validators         int
	ChainID            string
	BaseRPCPort        int
	BaseP2PPort        int
	BasePrometheusPort int
	BlockTime          time.Duration
	Genesis            GenesisOptions
}

// ValidateBasic checks the options.
func (o NetworkOptions) ValidateBasic() error {
	if o.Validators < 1 || o.Validators > 100 {
		return fmt.Errorf("node: validators must be 1..100, got %d", o.Validators)
	}
	if o.ChainID == "" {
		return fmt.Errorf("node: empty chain id")
	}
	return o.Genesis.Validate()
}

// Init writes o.Validators node homes dir/node0, dir/node1, ... sharing one
// genesis, each on its own ports (base port + index) and each knowing all
// others as persistent peers. It returns the homes' configurations.
func Init(dir string, o NetworkOptions) ([]Config, error) {
	if err := o.ValidateBasic(); err != nil {
		return nil, err
	}
	st, err := AppState(o.Genesis) // before writing anything
	if err != nil {
		return nil, err
	}
	cfgs := make([]Config, o.Validators)
	ks := make([]keys, o.Validators)
	vals := make([]cmttypes.GenesisValidator, o.Validators)
	for i := range cfgs {
		c := DefaultConfig(filepath.Join(dir, fmt.Sprintf("node%d", i)))
		if c.hasGenesis() {
			return nil, fmt.Errorf("node: %s already holds a chain", c.BasePath)
		}
		c.Moniker = fmt.Sprintf("node%d", i)
		c.RPCPort = o.BaseRPCPort + i
		c.P2PPort = o.BaseP2PPort + i
		if o.BasePrometheusPort > 0 {
			c.PrometheusPort = o.BasePrometheusPort + i
		} else {
			c.PrometheusPort = 0
		}
		if o.BlockTime > 0 {
			c.BlockTime = Duration(o.BlockTime)
		}
		if err := c.ValidateBasic(); err != nil {
			return nil, err
		}
		k, err := genKeys(c)
		if err != nil {
			return nil, err
		}
		if vals[i], err = genesisValidator(k, c.Moniker); err != nil {
			return nil, err
		}
		cfgs[i], ks[i] = c, k
	}
	doc, err := newGenesis(o.ChainID, vals, st)
	if err != nil {
		return nil, err
	}
	for i := range cfgs {
		for j := range cfgs {
			if j != i {
				cfgs[i].PersistentPeers = append(cfgs[i].PersistentPeers, fmt.Sprintf("%s@127.0.0.1:%d", ks[j].nodeID, cfgs[j].P2PPort))
			}
		}
		if err := saveGenesis(doc, cfgs[i].genesisFile()); err != nil {
			return nil, err
		}
		if err := cfgs[i].Save(); err != nil {
			return nil, err
		}
	}
	return cfgs, nil
}
