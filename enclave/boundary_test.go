package enclave

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTrustBoundary keeps the enclave's package tree from importing the
// untrusted host or anything that talks to the outside: the host calls the
// enclave, never the other way round.
func TestTrustBoundary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/integritee-go/integritee/service",
		"github.com/integritee-go/integritee/cli",
		"github.com/integritee-go/integritee/cmd",
		"github.com/integritee-go/integritee/rpcclient",
		"github.com/integritee-go/integritee/parentchain/client",
		"github.com/integritee-go/integritee/parentchain/app",
		"github.com/integritee-go/integritee/parentchain/node",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("the enclave depends on %s", dep)
			}
		}
	}
}
