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
		"no connections":        {func(c *Config) { c.RPCMaxConnections = 0 }, "--rpc-max-connections"},
		"no requests in flight": {func(c *Config) { c.RPCMaxInFlight = 0 }, "--rpc-max-in-flight"},
		"tiny messages":         {func(c *Config) { c.RPCMaxMessageBytes = 1 << 10 }, "--rpc-max-message-bytes"},
		"no write time":         {func(c *Config) { c.RPCWriteTimeout = 0 }, "--rpc-write-timeout"},
		"sub-second idle":       {func(c *Config) { c.RPCIdleTimeout = time.Millisecond }, "--rpc-idle-timeout"},
		"negative idle":         {func(c *Config) { c.RPCIdleTimeout = -time.Second }, "--rpc-idle-timeout"},
		"no untrusted conns":    {func(c *Config) { c.UntrustedMaxConnections = 0 }, "--untrusted-max-connections"},
		"tiny fetch answers":    {func(c *Config) { c.FetchMaxBytes = 1 << 10 }, "--fetch-max-bytes"},
		"huge fetch answers":    {func(c *Config) { c.FetchMaxBytes = 1 << 30 }, "--fetch-max-bytes"},
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

// The defaults serve thousands of clients, and every limit reaches the
// servers' limits, which themselves validate.
func TestRPCLimitsDefaultsAndWiring(t *testing.T) {
	c := DefaultConfig()
	if c.RPCMaxConnections < 5000 {
		t.Errorf("default trusted connection limit %d is below the 5,000-client benchmark", c.RPCMaxConnections)
	}
	c.RPCMaxConnections, c.RPCMaxInFlight, c.RPCMaxMessageBytes = 7, 3, 1<<20
	c.RPCWriteTimeout, c.RPCIdleTimeout, c.UntrustedMaxConnections = 2*time.Second, 0, 5
	tl, ul := c.TrustedRPCLimits(), c.UntrustedLimits()
	if err := c.ValidateBasic(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		name string
		err  error
	}{{"trusted", tl.Validate()}, {"untrusted", ul.Validate()}} {
		if l.err != nil {
			t.Errorf("%s limits: %v", l.name, l.err)
		}
	}
	if tl.MaxConnections != 7 || tl.MaxInFlight != 3 || tl.MaxMessageBytes != 1<<20 || tl.WriteTimeout != 2*time.Second || tl.IdleTimeout != 0 {
		t.Errorf("trusted limits %+v", tl)
	}
	if ul.MaxConnections != 5 || ul.MaxInFlight != 1 || ul.MaxBatch != 1 || ul.WriteTimeout != 2*time.Second {
		t.Errorf("untrusted limits %+v", ul)
	}
}
