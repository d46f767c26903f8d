package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func execute(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := newRootCmd(&out, &out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestFlagErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"chain":"dev","nodes":2}`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, `required flag(s) "config" not set`},
		{[]string{"--config", filepath.Join(t.TempDir(), "none.json")}, "no such file"},
		{[]string{"--config", bad}, `chain "dev" runs exactly one node`},
		{[]string{"--config", bad, "--log-level", "loud"}, `--log-level: "loud"`},
		{[]string{"--config", bad, "--stop-timeout", "0s"}, "must be positive"},
		{[]string{"--config", bad, "extra"}, "unknown command"},
	} {
		_, err := execute(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error containing %q, got %v", tc.args, tc.want, err)
		}
	}
}

// The shipped configs pass validation through the command and fail only
// at the binaries, which an empty --bin-dir lacks.
func TestShippedConfigReachesBinaries(t *testing.T) {
	_, err := execute("--config", "../../local-setup/one-validateer.json", "--bin-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "integritee-node not found") {
		t.Fatalf("got %v", err)
	}
}

func TestDefaultBinDir(t *testing.T) {
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	if got := defaultBinDir(); got != filepath.Dir(exe) {
		t.Fatalf("defaultBinDir %s, want %s", got, filepath.Dir(exe))
	}
}
