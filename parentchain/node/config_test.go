package node

import (
	"strings"
	"testing"
)

func TestConfigValidateBasicStateVersions(t *testing.T) {
	for _, c := range []struct {
		versions int
		bad      bool
	}{{0, false}, {2, false}, {100, false}, {1, true}, {-1, true}} {
		cfg := DefaultConfig(t.TempDir())
		cfg.StateVersions = c.versions
		err := cfg.ValidateBasic()
		if (err != nil) != c.bad {
			t.Errorf("state versions %d: %v", c.versions, err)
		}
		if err != nil && !strings.Contains(err.Error(), "state versions") {
			t.Errorf("state versions %d: unclear error %v", c.versions, err)
		}
	}
}
