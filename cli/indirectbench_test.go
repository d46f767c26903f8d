package cli

import (
	"testing"
	"time"
)

// TestBenchmarkIndirectRefusesBadFlags: benchmark-indirect checks its flags
// before it dials anything (the ports here are closed).
func TestBenchmarkIndirectRefusesBadFlags(t *testing.T) {
	base := []string{"-p", "1", "-P", "1", "--keystore", t.TempDir()}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"trusted", "benchmark-indirect", "--accounts", "0"}, "--accounts must be positive"},
		{[]string{"trusted", "benchmark-indirect", "--calls", "-1"}, "--calls must be positive"},
		{[]string{"trusted", "benchmark-indirect", "--workers", "0"}, "--workers must be positive"},
		{[]string{"trusted", "benchmark-indirect", "--root", "nobody"}, "--root"},
		{[]string{"trusted", "--direct", "benchmark-indirect"}, "drop --direct"},
	} {
		_, err := run(t, append(base, c.args...)...)
		wantErr(t, err, c.want)
	}
}

// TestIndirectQuantile: nearest rank, as the report's percentiles.
func TestIndirectQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := indirectQuantile(d, c.p); got != c.want {
			t.Errorf("quantile %.2f = %s, want %s", c.p, got, c.want)
		}
	}
	if got := indirectQuantile([]time.Duration{7}, 0.99); got != 7 {
		t.Errorf("quantile of one = %s", got)
	}
	if got := indirectQuantile(nil, 0.5); got != 0 {
		t.Errorf("quantile of none = %s", got)
	}
	if got, want := indirectLine(123.45, 2100*time.Millisecond, 3099*time.Millisecond), "indirect_per_s=123.5 p50_ms=2100 p99_ms=3099"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
}
