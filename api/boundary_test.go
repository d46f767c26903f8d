package api_test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/integritee-go/integritee"

// pkg is what `go list -json` says of one package (non-test imports).
type pkg struct {
	ImportPath string
	Imports    []string
}

func listPackages(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	args := append([]string{"list", "-json=ImportPath,Imports"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %v found no package", patterns)
	}
	return pkgs
}

// TestClientsImportNoEnclaveInternals: clients (the CLI, the RPC client)
// build trusted operations, encrypt them and check RA-TLS with the public
// packages (api/..., attestation/...), never with the enclave's internals:
// the trust boundary shows in the imports.
func TestClientsImportNoEnclaveInternals(t *testing.T) {
	for _, p := range listPackages(t, "./cli/...", "./rpcclient/...") {
		for _, imp := range p.Imports {
			if imp == module+"/enclave" || strings.HasPrefix(imp, module+"/enclave/") {
				t.Errorf("%s imports %s", p.ImportPath, imp)
			}
		}
	}
}

// TestLowLevelPackagesImportNothingAbove: the shared foundations (accounts,
// amounts, the codec, named errors, attestation, sidechain blocks and the
// public API) import only each other, never the parentchain, the enclave or
// the host.
func TestLowLevelPackagesImportNothingAbove(t *testing.T) {
	low := []string{"account", "balance", "codec", "errcode", "attestation", "sidechain", "api"}
	isLow := func(imp string) bool {
		for _, l := range low {
			if imp == module+"/"+l || strings.HasPrefix(imp, module+"/"+l+"/") {
				return true
			}
		}
		return false
	}
	var patterns []string
	for _, l := range low {
		patterns = append(patterns, "./"+l+"/...")
	}
	for _, p := range listPackages(t, patterns...) {
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/") && !isLow(imp) {
				t.Errorf("%s imports %s, above it", p.ImportPath, imp)
			}
		}
	}
}

// TestHostHoldsNoSecrets: the validateer's host (service/ and its command)
// never holds the TEE backend, the enclave's keys or a private key: the
// enclave opens its TEE by name, makes its RA-TLS key, serves the trusted
// RPC on a listener the host hands over, and shows the host public keys
// only.
func TestHostHoldsNoSecrets(t *testing.T) {
	forbidden := []string{module + "/enclave/tee", module + "/enclave/keys", module + "/enclave/stf"}
	for _, p := range listPackages(t, "./service/...", "./cmd/integritee-service/...") {
		for _, imp := range p.Imports {
			for _, f := range forbidden {
				if imp == f || strings.HasPrefix(imp, f+"/") {
					t.Errorf("%s imports %s", p.ImportPath, imp)
				}
			}
		}
	}
	out, err := exec.Command("grep", "-rnE", "--include=*.go", "--exclude=*_test.go", `tee\.Backend|keys\.Keys|PrivateKey|NewBoundCertificate|SealingKey`, "../service", "../cmd/integritee-service").CombinedOutput()
	if len(out) > 0 {
		t.Errorf("host code names a secret holder:\n%s", out)
	} else if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("grep: %v", err)
	}
}
