package service

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidateBasic(t *testing.T) {
	if err := DefaultConfig().ValidateBasic(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, tc := range map[string]struct {
		mut  func(*Config)
		want string
	}{
		"empty data dir":        {func(c *Config) { c.DataDir = "" }, "data dir"},
		"port out of range":     {func(c *Config) { c.TrustedPort = 70000 }, "trusted port"},
		"port clash":            {func(c *Config) { c.UntrustedPort = c.TrustedPort }, "both"},
		"pprof without metrics": {func(c *Config) { c.Pprof = true }, "needs --enable-metrics"},
		"metrics clash":         {func(c *Config) { c.EnableMetrics = true; c.MetricsPort = c.HTTPPort }, "both"},
		"tiny slot":             {func(c *Config) { c.SlotDuration = time.Millisecond }, "slot duration"},
		"no finalization":       {func(c *Config) { c.FinalizationInterval = 0 }, "finalization"},
	} {
		c := DefaultConfig()
		tc.mut(&c)
		if err := c.ValidateBasic(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", name, err, tc.want)
		}
	}
}

func TestExternalURLs(t *testing.T) {
	c := DefaultConfig()
	if c.TrustedURL() != "wss://127.0.0.1:2000" || c.UntrustedURL() != "ws://127.0.0.1:2001" || c.MuRaURL() != "127.0.0.1:3443" {
		t.Errorf("defaults: %s %s %s", c.TrustedURL(), c.UntrustedURL(), c.MuRaURL())
	}
	c.TrustedExternal = "wss://worker.example:443"
	if c.TrustedURL() != "wss://worker.example:443" {
		t.Errorf("external: %s", c.TrustedURL())
	}
	if c.bindHost() != "127.0.0.1" {
		t.Errorf("bind host %s", c.bindHost())
	}
	c.WSExternal = true
	if c.bindHost() != "0.0.0.0" {
		t.Errorf("external bind host %s", c.bindHost())
	}
}
