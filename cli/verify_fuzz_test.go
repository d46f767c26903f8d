package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// FuzzTrustRoot: the CLI's light-client trust root comes from
// --trust-hash or from trust-<chain id>.json in the keystore directory,
// which holds whatever was written there. root never panics and accepts a
// root only for the node's chain id, a positive height, and a hash that
// is the node's block hash at that height.
func FuzzTrustRoot(f *testing.F) {
	const chainID = "integritee-dev"
	node := func(h int64) []byte { s := sha256.Sum256([]byte{byte(h)}); return s[:] }
	good, _ := json.Marshal(trustRoot{ChainID: chainID, Height: 3, Hash: strings.ToUpper(hex.EncodeToString(node(3)))})
	f.Add(good, int64(0), "")
	f.Add(good, int64(3), "0x"+hex.EncodeToString(node(3)))
	f.Add(good, int64(2), hex.EncodeToString(node(3)))
	f.Add([]byte(`{"chain_id":"other","height":3,"hash":"00"}`), int64(0), "")
	f.Add([]byte(`{"chain_id":"integritee-dev","height":-1}`), int64(0), "0xzz")
	dir := f.TempDir()
	s := trustStore{dir: dir, warn: io.Discard}
	hashAt := func(_ context.Context, h int64) ([]byte, error) {
		if h <= 0 {
			return nil, errors.New("no such block")
		}
		return node(h), nil
	}
	f.Fuzz(func(t *testing.T, stored []byte, trustHeight int64, trustHash string) {
		if err := os.WriteFile(s.path(chainID), stored, 0o600); err != nil {
			t.Fatal(err)
		}
		r, firstUse, err := s.root(context.Background(), chainID, verifyOpts{TrustHeight: trustHeight, TrustHash: trustHash}, hashAt)
		if err != nil {
			return
		}
		h, perr := parseBlockHash(r.Hash)
		if firstUse || r.ChainID != chainID || r.Height <= 0 || perr != nil || string(h) != string(node(r.Height)) {
			t.Fatalf("accepted root %+v (first use %v), the node's block %d has hash %X", r, firstUse, r.Height, node(r.Height))
		}
	})
}
