package service

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/integritee-go/integritee/jsonrpc"
)

// Metrics are the validateer's Prometheus metrics, named as the original
// worker's (integritee_worker_*) so dashboards and alerts carry over.
type Metrics struct {
	Forks, OnboardImported, Rollbacks prometheus.Counter
	Behind                            prometheus.Gauge
	OnboardRemaining, QueuedBlocks    prometheus.Gauge
	SlotDuration                      prometheus.Histogram

	reg *prometheus.Registry

	BlockHeight       prometheus.Gauge
	LastFinalized     *prometheus.GaugeVec
	PoolSize          prometheus.Gauge
	RPCRequests       prometheus.CounterFunc
	RPCTrustedCalls   prometheus.CounterFunc
	AttemptedCalls    *prometheus.CounterVec
	ExecutionDuration prometheus.Histogram
	StateSize         *prometheus.GaugeVec
	TotalIssuance     prometheus.Gauge
	ParentchainBlock  *prometheus.GaugeVec
	PeerCount         prometheus.Gauge
	AuraRemaining     *prometheus.HistogramVec
	FreeBalance       *prometheus.GaugeVec
	Labels            *prometheus.GaugeVec
	SyncLag           prometheus.Gauge
	ProofFailures     prometheus.Counter
	ViewHeight        prometheus.Gauge
	BlocksProposed    prometheus.Counter
	BlocksImported    prometheus.Counter
}

// NewMetrics registers the metrics in a new registry. requests and
// submitted read the RPC server's counters.
func NewMetrics(requests, submitted func() float64) *Metrics {
	const ns = "integritee_worker"
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.BlockHeight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_sidechain_block_height", Help: "Number of the last sidechain block produced or imported."})
	m.LastFinalized = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_sidechain_last_finalized_block_number", Help: "Number of the last sidechain block confirmed on the parentchain."}, []string{"shard"})
	m.PoolSize = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_top_pool_a_priori_size", Help: "Trusted operations waiting in the pool."})
	m.RPCRequests = prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "enclave_rpc_requests", Help: "Trusted JSON-RPC requests received."}, requests)
	m.RPCTrustedCalls = prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "enclave_rpc_tc_received", Help: "Trusted operations submitted over RPC."}, submitted)
	m.AttemptedCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "enclave_stf_state_update_attempted_calls_count", Help: "Trusted calls executed, by result (success or failed)."}, []string{"result"})
	m.ExecutionDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "enclave_stf_state_update_execution_duration", Help: "Seconds to execute one block's trusted calls.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	m.StateSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_stf_state_size_bytes", Help: "Size of the shard's state in bytes."}, []string{"shard"})
	m.TotalIssuance = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_stf_runtime_total_issuance", Help: "Sidechain total issuance in planck."})
	m.ParentchainBlock = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_stf_runtime_parentchain_processed_block_number", Help: "Last parentchain block the enclave verified and processed."}, []string{"parentchain_id"})
	m.PeerCount = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_sidechain_peer_count", Help: "Other registered enclaves of this build the validateer keeps a connection to (its peers)."})
	m.AuraRemaining = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "enclave_sidechain_aura_remaining_durations", Help: "Seconds left of the slot after each stage of block production.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 10)}, []string{"stage"})
	m.FreeBalance = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "account_free_balance", Help: "Free balance of the enclave's accounts in planck."}, []string{"parentchain", "role"})
	m.Labels = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_labels", Help: "Constant 1, labelled with the version and the enclave's fingerprint."}, []string{"version", "fingerprint"})
	m.SyncLag = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "parentchain_sync_lag_blocks", Help: "Parentchain blocks the enclave has yet to verify."})
	m.ProofFailures = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "parentchain_proof_failures_total", Help: "Parentchain state reads the enclave refused because their proofs did not verify."})
	m.ViewHeight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "parentchain_proven_view_height", Help: "Parentchain height of the enclave's last state read verified by proof (authorities, finality, payouts)."})
	m.BlocksProposed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "enclave_sidechain_blocks_proposed_total", Help: "Sidechain blocks this validateer authored."})
	m.BlocksImported = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "enclave_sidechain_blocks_imported_total", Help: "Sidechain blocks of peers this validateer imported."})
	m.Forks = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "enclave_sidechain_forks_total", Help: "Peers' blocks that competed with a block this validateer already held at their height."})
	m.OnboardRemaining = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_sidechain_onboarding_remaining_blocks", Help: "Blocks this validateer still has to fetch and import to reach its peers' head (0 when caught up)."})
	m.OnboardImported = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "enclave_sidechain_onboarding_imported_blocks_total", Help: "Blocks fetched from peers and imported while on-boarding or catching up."})
	m.QueuedBlocks = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_sidechain_queued_blocks", Help: "Peers' blocks waiting in the import queue for a parent or a parentchain block."})
	m.SlotDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "enclave_sidechain_slot_duration_seconds", Help: "Seconds the enclave spent on each slot in which it authored a block.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	m.Rollbacks = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "enclave_sidechain_rollbacks_total", Help: "Forks this validateer lost: it rolled back to the common ancestor and took the winning branch."})
	m.Behind = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "enclave_sidechain_behind_blocks", Help: "How far the highest queued peer block is above the head (0 when none waits)."})
	m.reg.MustRegister(m.Rollbacks, m.Behind)
	// The process's CPU seconds, resident memory, file descriptors and the
	// Go runtime's figures (process_*, go_*), and the peak resident memory,
	// which benchmarks report.
	m.reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "process_peak_resident_memory_bytes",
		Help: "Peak resident memory of the validateer process (VmHWM in /proc/self/status; 0 where there is none)."}, peakRSS))
	m.reg.MustRegister(m.BlocksProposed, m.BlocksImported, m.Forks, m.OnboardRemaining, m.OnboardImported, m.QueuedBlocks, m.SlotDuration)
	m.reg.MustRegister(m.BlockHeight, m.LastFinalized, m.PoolSize, m.RPCRequests, m.RPCTrustedCalls, m.AttemptedCalls,
		m.ExecutionDuration, m.StateSize, m.TotalIssuance, m.ParentchainBlock, m.PeerCount, m.AuraRemaining,
		m.FreeBalance, m.Labels, m.SyncLag, m.ProofFailures, m.ViewHeight)
	return m
}

// WatchConnections exports the connection counts of a JSON-RPC port
// ("trusted" or "untrusted"): open connections, those refused at the
// connection limit, and those closed by a limit (idle, a write that failed
// or timed out, an oversize message).
func (m *Metrics) WatchConnections(port string, st *jsonrpc.ConnStats) {
	const ns = "integritee_worker"
	count := func(v interface{ Load() int64 }) func() float64 { return func() float64 { return float64(v.Load()) } }
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "rpc_connections", ConstLabels: prometheus.Labels{"port": port},
			Help: "Open websocket connections of the port."}, count(&st.Open)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "rpc_connections_refused_total", ConstLabels: prometheus.Labels{"port": port},
			Help: "Connections refused (HTTP 503) because the port held its maximum."}, count(&st.Refused)))
	for reason, v := range map[string]*atomic.Int64{"idle": &st.ClosedIdle, "write": &st.ClosedWrite, "message_size": &st.ClosedTooLarge} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "rpc_connections_closed_total",
			ConstLabels: prometheus.Labels{"port": port, "reason": reason},
			Help:        "Connections the server closed by a limit: idle (idle timeout), write (a write failed or timed out: a client that does not read), message_size (a message above the size limit)."},
			count(v)))
	}
}

// Registry returns the registry to serve.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// peakRSS returns the process's peak resident set size in bytes, from
// /proc/self/status (Linux), or 0.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	return vmHWM(b)
}

// vmHWM reads the VmHWM line ("VmHWM:   123456 kB") of a status file.
func vmHWM(status []byte) float64 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) == 3 && string(f[0]) == "VmHWM:" && string(f[2]) == "kB" {
			kb, err := strconv.ParseUint(string(f[1]), 10, 64)
			if err != nil {
				return 0
			}
			return float64(kb) * 1024
		}
	}
	return 0
}
