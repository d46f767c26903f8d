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

func TestConfigValidateBasicPprofAddr(t *testing.T) {
	for addr, bad := range map[string]bool{"": false, "127.0.0.1:6060": false, "localhost:0": false, ":6060": false, "6060": true, "127.0.0.1": true, "127.0.0.1:": true} {
		cfg := DefaultConfig(t.TempDir())
		cfg.PprofAddr = addr
		err := cfg.ValidateBasic()
		if (err != nil) != bad {
			t.Errorf("pprof address %q: %v", addr, err)
		}
		if err != nil && !strings.Contains(err.Error(), "pprof") {
			t.Errorf("pprof address %q: unclear error %v", addr, err)
		}
	}
}
