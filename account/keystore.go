package account

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ErrNoKey is returned when the keystore does not hold an account's key.
var ErrNoKey = errors.New("account: no key for this account in the keystore")

// Keystore keeps secret seeds in a directory, one file per account, readable
// only by the owner. It is the CLI's wallet (./my_keystore by default).
type Keystore struct {
	dir string
}

// NewKeystore returns a keystore in dir; the directory is created on first write.
func NewKeystore(dir string) *Keystore { return &Keystore{dir: dir} }

// Dir returns the keystore's directory.
func (k *Keystore) Dir() string { return k.dir }

type keyFile struct {
	Address string `json:"address"`
	Seed    string `json:"seed"`
}

// Generate creates, stores and returns a new random key pair.
func (k *Keystore) Generate() (*Pair, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	p, err := PairFromSeed(seed)
	if err != nil {
		return nil, err
	}
	return p, k.Store(p)
}

// Store writes p's seed to the keystore.
func (k *Keystore) Store(p *Pair) error {
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	b, _ := json.Marshal(keyFile{Address: p.ID().String(), Seed: "0x" + hex.EncodeToString(p.Seed())})
	path := filepath.Join(k.dir, p.ID().String()+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// Get loads the pair of id.
func (k *Keystore) Get(id ID) (*Pair, error) {
	b, err := os.ReadFile(filepath.Join(k.dir, id.String()+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (keystore %s)", ErrNoKey, id, k.dir)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	var f keyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", id, err)
	}
	seed, err := hex.DecodeString(strings.TrimPrefix(f.Seed, "0x"))
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: bad seed: %w", id, err)
	}
	p, err := PairFromSeed(seed)
	if err != nil {
		return nil, err
	}
	if p.ID() != id {
		return nil, fmt.Errorf("keystore: %s: stored seed belongs to %s", id, p.ID())
	}
	return p, nil
}

// List returns the accounts the keystore holds, sorted by address.
func (k *Keystore) List() ([]ID, error) {
	ents, err := os.ReadDir(k.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	var ids []ID
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if id, err := ParseID(name); err == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].String() < ids[j].String() })
	return ids, nil
}

// ResolveID turns a CLI account argument into an account: a dev seed
// (//Name), an SS58 address or a 0x-hex public key.
func ResolveID(s string) (ID, error) {
	if IsDevSeed(s) {
		p, err := DevPair(s)
		if err != nil {
			return ID{}, err
		}
		return p.ID(), nil
	}
	return ParseID(s)
}

// ResolvePair turns a CLI account argument into a key pair we hold: a dev
// seed, or an account whose key is in ks.
func ResolvePair(s string, ks *Keystore) (*Pair, error) {
	if IsDevSeed(s) {
		return DevPair(s)
	}
	id, err := ParseID(s)
	if err != nil {
		return nil, err
	}
	return ks.Get(id)
}
