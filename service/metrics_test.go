package service

import (
	"runtime"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/integritee-go/integritee/jsonrpc"
)

func TestVmHWM(t *testing.T) {
	status := "Name:\tintegritee-service\nVmPeak:\t  900000 kB\nVmHWM:\t   123456 kB\nVmRSS:\t   100000 kB\n"
	if got := vmHWM([]byte(status)); got != 123456*1024 {
		t.Fatalf("VmHWM = %v", got)
	}
	for _, bad := range []string{"", "VmHWM:\tlots kB\n", "VmHWM:\t12 MB\n"} {
		if got := vmHWM([]byte(bad)); got != 0 {
			t.Fatalf("%q: %v, want 0", bad, got)
		}
	}
}

func TestMetricsIncludeTheProcessFigures(t *testing.T) {
	m := NewMetrics(func() float64 { return 0 }, func() float64 { return 0 })
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		got[f.GetName()] = f
	}
	want := []string{"go_goroutines"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_cpu_seconds_total", "process_resident_memory_bytes", "integritee_worker_process_peak_resident_memory_bytes")
	}
	for _, name := range want {
		if got[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	if f := got["integritee_worker_process_peak_resident_memory_bytes"]; runtime.GOOS == "linux" && f.GetMetric()[0].GetGauge().GetValue() <= 0 {
		t.Errorf("peak RSS %v", f)
	}
}

func TestConnectionMetricsReadTheServersCounts(t *testing.T) {
	m := NewMetrics(func() float64 { return 0 }, func() float64 { return 0 })
	var trusted, untrusted jsonrpc.ConnStats
	m.WatchConnections("trusted", &trusted)
	m.WatchConnections("untrusted", &untrusted)
	trusted.Open.Store(3)
	trusted.Refused.Store(2)
	trusted.ClosedIdle.Store(1)
	untrusted.ClosedWrite.Store(4)
	untrusted.ClosedTooLarge.Store(5)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "integritee_worker_rpc_connections") {
			continue
		}
		for _, mm := range f.GetMetric() {
			key := strings.TrimPrefix(f.GetName(), "integritee_worker_")
			for _, l := range mm.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			got[key] = mm.GetGauge().GetValue() + mm.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"rpc_connections port=trusted": 3, "rpc_connections port=untrusted": 0,
		"rpc_connections_refused_total port=trusted": 2, "rpc_connections_refused_total port=untrusted": 0,
		"rpc_connections_closed_total port=trusted reason=idle": 1, "rpc_connections_closed_total port=trusted reason=write": 0,
		"rpc_connections_closed_total port=trusted reason=message_size": 0, "rpc_connections_closed_total port=untrusted reason=idle": 0,
		"rpc_connections_closed_total port=untrusted reason=write": 4, "rpc_connections_closed_total port=untrusted reason=message_size": 5,
	}
	if len(got) != len(want) {
		t.Errorf("got %d series, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}
