package localnet

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json, want string // want: a substring of the error; "" = valid
	}{
		{"dev minimal", `{"chain":"dev","nodes":1}`, ""},
		{"dev with validateer", `{"chain":"dev","nodes":1,"validateers":[{"run_flags":["--dev"]}]}`, ""},
		{"init four nodes", `{"chain":"init","nodes":4,"validateers":[{"node":"node3"}]}`, ""},
		{"init named nodes", `{"chain":"init","nodes":[{"name":"alice"},{"name":"bob"}],"validateers":[{"node":"bob"}]}`, ""},
		{"prometheus", `{"chain":"dev","nodes":1,"prometheus":{"enabled":true}}`, ""},
		{"prometheus off with port", `{"chain":"dev","nodes":1,"prometheus":{"enabled":false,"port":9090}}`, ""},
		{"flags", `{"chain":"dev","nodes":[{"flags":["--log-level","debug"]}],"validateers":[{"flags":["--log-level=debug"],"run_flags":["--dev","--skip-ra"]}]}`, ""},

		{"empty", `{}`, `chain: missing`},
		{"unknown chain", `{"chain":"prod","nodes":1}`, `neither "dev" nor "init"`},
		{"unknown field", `{"chain":"dev","nodes":1,"validators":2}`, `unknown field "validators"`},
		{"unknown node field", `{"chain":"dev","nodes":[{"rpc":1}]}`, `unknown field "rpc"`},
		{"trailing data", `{"chain":"dev","nodes":1} {}`, `trailing data`},
		{"not json", `chain: dev`, `invalid character`},
		{"nodes not a count", `{"chain":"dev","nodes":"one"}`, `want a count or a list`},
		{"nodes negative", `{"chain":"dev","nodes":-1}`, `negative`},
		{"dev no nodes", `{"chain":"dev","nodes":0}`, `exactly one node, got 0`},
		{"dev two nodes", `{"chain":"dev","nodes":2}`, `use "init" for several`},
		{"dev chain id", `{"chain":"dev","nodes":1,"chain_id":"x"}`, `chain_id applies to chain "init" only`},
		{"init no nodes", `{"chain":"init"}`, `needs 1..100 nodes, got 0`},
		{"init too many", `{"chain":"init","nodes":101}`, `needs 1..100 nodes, got 101`},
		{"bad block time", `{"chain":"dev","nodes":1,"block_time":"fast"}`, `block_time: "fast"`},
		{"zero block time", `{"chain":"dev","nodes":1,"block_time":"0s"}`, `positive duration`},
		{"bad name", `{"chain":"dev","nodes":[{"name":"../x"}]}`, `name "../x"`},
		{"reserved name", `{"chain":"dev","nodes":[{"name":"logs"}]}`, `reserved`},
		{"duplicate name", `{"chain":"dev","nodes":1,"validateers":[{"name":"node0"}]}`, `already used by nodes[0]`},
		{"duplicate validateer", `{"chain":"dev","nodes":1,"validateers":[{"name":"v"},{"name":"v"}]}`, `validateers[1]: name "v" is already used by validateers[0]`},
		{"unknown node", `{"chain":"dev","nodes":1,"validateers":[{"node":"node1"}]}`, `node "node1" is not one of the nodes`},
		{"node own flag", `{"chain":"dev","nodes":[{"flags":["--rpc-port","1"]}]}`, `flag --rpc-port is set by the launcher`},
		{"node own flag =", `{"chain":"dev","nodes":[{"flags":["--base-path=/x"]}]}`, `flag --base-path is set by the launcher`},
		{"service own flag short", `{"chain":"dev","nodes":1,"validateers":[{"flags":["-P2000"]}]}`, `flag -P is set by the launcher`},
		{"service own run flag", `{"chain":"dev","nodes":1,"validateers":[{"run_flags":["-d","x"]}]}`, `run_flags: flag -d is set by the launcher`},
		{"run in flags", `{"chain":"dev","nodes":1,"validateers":[{"flags":["run"]}]}`, `must not contain "run"`},
		{"empty flag", `{"chain":"dev","nodes":[{"flags":[""]}]}`, `empty flag`},
		{"port out of range", `{"chain":"dev","nodes":[{"ports":{"rpc":70000}}]}`, `node0 rpc: port 70000 out of range`},
		{"negative port", `{"chain":"dev","nodes":1,"validateers":[{"ports":{"health":-5}}]}`, `validateer0 health: port -5 out of range`},
		{"port clash", `{"chain":"dev","nodes":1,"validateers":[{"ports":{"metrics":9944}}]}`, `validateer0 metrics: port 9944 is also node0 rpc`},
		{"base port clash", `{"chain":"dev","nodes":1,"validateers":[{}],"base_ports":{"validateer":{"trusted":9615}}}`, `port 9615 is also node0 prometheus`},
		{"validateers clash", `{"chain":"dev","nodes":1,"validateers":[{},{"ports":{"trusted":2001}}]}`, `validateer1 trusted: port 2001 is also validateer0 untrusted`},
		{"prometheus clash", `{"chain":"dev","nodes":1,"validateers":[{}],"prometheus":{"enabled":true,"port":8787}}`, `prometheus: port 8787 is also validateer0 metrics`},
		{"prometheus bad port", `{"chain":"dev","nodes":1,"prometheus":{"enabled":true,"port":-1}}`, `prometheus: port -1 out of range`},
		{"init p2p gap", `{"chain":"init","nodes":[{},{"ports":{"p2p":40000}}]}`, `node1 p2p: port 40000, but chain "init" needs 30334`},
		{"init p2p range", `{"chain":"init","nodes":3,"base_ports":{"node":{"p2p":65535}}}`, `out of range`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.json))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("want an error containing %q, got none", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestResolvePorts(t *testing.T) {
	c, err := ParseConfig([]byte(`{
		"chain": "init", "nodes": [{}, {"ports": {"rpc": 19000}}, {"name": "n2"}],
		"base_ports": {"validateer": {"trusted": 12000}},
		"validateers": [{"node": "n2"}, {"ports": {"health": 14000}}],
		"prometheus": {"enabled": true}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if n.ChainID != DefaultChainID || n.PrometheusPort != DefaultPrometheusPort {
		t.Fatalf("chain id %q, prometheus %d", n.ChainID, n.PrometheusPort)
	}
	wantNodes := []NodePorts{{9944, 30333, 9615}, {19000, 30334, 9616}, {9946, 30335, 9617}}
	for i, nd := range n.Nodes {
		if nd.Ports != wantNodes[i] {
			t.Errorf("%s: ports %+v, want %+v", nd.Name, nd.Ports, wantNodes[i])
		}
	}
	if n.Nodes[2].Name != "n2" || n.Nodes[1].Name != "node1" {
		t.Errorf("names %s %s", n.Nodes[1].Name, n.Nodes[2].Name)
	}
	wantVals := []ValidateerPorts{{12000, 2001, 3443, 4545, 8787}, {12010, 2011, 3453, 14000, 8797}}
	for i, v := range n.Validateers {
		if v.Ports != wantVals[i] {
			t.Errorf("%s: ports %+v, want %+v", v.Name, v.Ports, wantVals[i])
		}
	}
	if n.Validateers[0].Node != n.Nodes[2] || n.Validateers[1].Node != n.Nodes[0] {
		t.Errorf("validateers sit beside %s and %s, want n2 and node0", n.Validateers[0].Node.Name, n.Validateers[1].Node.Name)
	}
}

// The shipped configurations are valid and are what the README says.
func TestShippedConfigs(t *testing.T) {
	files, err := filepath.Glob("../local-setup/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no local-setup/*.json: %v", err)
	}
	for _, f := range files {
		c, err := LoadConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.Resolve()
		if err != nil {
			t.Fatal(err)
		}
		// node0 and validateer0 on the programs' default ports, where
		// integritee-cli looks without flags.
		if n.Nodes[0].Ports != DefaultBasePorts.Node {
			t.Errorf("%s: node0 ports %+v", f, n.Nodes[0].Ports)
		}
		if len(n.Validateers) == 0 || n.Validateers[0].Ports != DefaultBasePorts.Validateer {
			t.Errorf("%s: want validateer0 on the default ports, got %+v", f, n.Validateers)
		}
		for _, v := range n.Validateers {
			if !reflect.DeepEqual(v.RunFlags, []string{"--dev"}) {
				t.Errorf("%s: %s run flags %q", f, v.Name, v.RunFlags)
			}
		}
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(p, []byte(`{"chain":"dev","nodes":3}`), 0o644)
	_, err := LoadConfig(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("want an error naming %s, got %v", p, err)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("a missing file loaded")
	}
}

func TestPrometheusConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"chain":"init","nodes":2,"validateers":[{}],"prometheus":{"enabled":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := c.Resolve()
	y := PrometheusConfig(n)
	for _, want := range []string{
		"scrape_interval: 5s",
		"job_name: integritee-node", `targets: ["127.0.0.1:9615"]`, `name: "node0"`, `targets: ["127.0.0.1:9616"]`, `name: "node1"`,
		"job_name: integritee-service", `targets: ["127.0.0.1:8787"]`, `name: "validateer0"`,
	} {
		if !strings.Contains(y, want) {
			t.Errorf("prometheus.yml lacks %q:\n%s", want, y)
		}
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"run", "--dev", "a b", "it's", ""})
	want := `run --dev 'a b' 'it'\''s' ''`
	if got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
