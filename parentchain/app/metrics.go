package app

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/types"
)

// Metrics are the application's Prometheus metrics (integritee_node_*).
type Metrics struct {
	txs      *prometheus.CounterVec
	accounts prometheus.Gauge
	issuance prometheus.Gauge
	height   prometheus.Gauge
	enclaves prometheus.Gauge
	// commitment is the time FinalizeBlock spends on the state
	// commitment (leaf hashes and tree updates); written keys per block.
	commitment   prometheus.Histogram
	writtenKeys  prometheus.Histogram
	finalizeTime prometheus.Histogram
	// verifications counts transaction signatures verified (not those
	// taken from the checked-transaction cache).
	verifications prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "integritee_node", Name: "transactions_total",
			Help: "Transactions executed in committed blocks, by module, call and result (ok or the error's name).",
		}, []string{"module", "call", "result"}),
		accounts: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "integritee_node", Name: "accounts",
			Help: "Accounts that have ever held a balance or sent a transaction.",
		}),
		issuance: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "integritee_node", Name: "total_issuance_planck",
			Help: "Total issuance of TEER in planck (10^-12 TEER).",
		}),
		height: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "integritee_node", Name: "block_height",
			Help: "Height of the last block the application committed.",
		}),
		enclaves: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "integritee_node", Name: "enclaves",
			Help: "Enclaves registered in teerex.",
		}),
		commitment: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "integritee_node", Name: "state_commitment_seconds",
			Help:    "Time FinalizeBlock spends updating the state commitment (leaf hashes and Merkle trees) per block.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		writtenKeys: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "integritee_node", Name: "state_written_keys",
			Help:    "State keys a block writes (and the commitment rehashes).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		finalizeTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "integritee_node", Name: "finalize_block_seconds",
			Help:    "Time FinalizeBlock takes per block, the state commitment included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
	m.verifications = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "integritee_node", Name: "signature_verifications_total",
		Help: "Transaction signatures the application verified (CheckTx, rechecks, blocks); a transaction CheckTx accepted is not verified again.",
	})
	reg.MustRegister(m.txs, m.accounts, m.issuance, m.height, m.enclaves, m.commitment, m.writtenKeys, m.finalizeTime, m.verifications)
	return m
}

func (m *Metrics) observeTx(o txOutcome) {
	module, call := "unknown", "unknown"
	if o.call != "" {
		module, call, _ = strings.Cut(o.call, ".")
	}
	m.txs.WithLabelValues(module, call, o.result()).Inc()
}

// updateMetrics refreshes the gauges from committed state. Callers hold a.mu.
func (a *App) updateMetrics() {
	if a.metrics == nil {
		return
	}
	sum, err := a.balances.Query(a.store, []string{"summary"})
	if err == nil {
		s := sum.(balances.Summary)
		a.metrics.accounts.Set(float64(s.Accounts))
		a.metrics.issuance.Set(s.TotalIssuance.Float64())
	}
	a.metrics.height.Set(float64(a.height))
	if reg, ok := a.modules[teerex.ModuleName].(*teerex.Module); ok {
		a.metrics.enclaves.Set(float64(reg.Count(types.QueryContext(a.store, a.codec))))
	}
}
