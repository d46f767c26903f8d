package service

import (
	"runtime"
	"testing"

	dto "github.com/prometheus/client_model/go"
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
