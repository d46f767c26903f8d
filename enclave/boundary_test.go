package enclave

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/parentchain/types"
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

// TestNoECALLTakesAParentchainCall: the host cannot hand the enclave a
// parentchain call to sign. (SendParentchainCall once signed whatever the
// host passed, e.g. an unshield_funds emptying the shard's bonding account.)
// The enclave composes its own calls: Register, confirmations, its outbox.
func TestNoECALLTakesAParentchainCall(t *testing.T) {
	call := reflect.TypeOf(types.Call{})
	et := reflect.TypeOf(&Enclave{})
	if et.NumMethod() == 0 {
		t.Fatal("no ECALLs found")
	}
	for i := 0; i < et.NumMethod(); i++ {
		m := et.Method(i)
		for j := 1; j < m.Type.NumIn(); j++ {
			in := m.Type.In(j)
			for in.Kind() == reflect.Pointer || in.Kind() == reflect.Slice {
				in = in.Elem()
			}
			if in == call {
				t.Errorf("ECALL %s takes a parentchain call (argument %d)", m.Name, j)
			}
		}
	}
}
