package enclave

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/jsonrpc"
)

// ServeTrustedRPC serves the trusted JSON-RPC on l, a listener the host
// hands over, until CloseTrustedRPC. TLS ends here, with an RA-TLS
// certificate the enclave makes (its key never leaves the enclave) and
// renews itself; the quote names the enclave's account beside the TLS key,
// so that clients bind the key to the enclave's registration. counters are
// the server's request and connection counts, which the host exports;
// limits bound its connections and what each may hold (operational
// settings, not secrets: the host can refuse connections anyway).
func (e *Enclave) ServeTrustedRPC(l net.Listener, counters *rpc.Counters, limits jsonrpc.Limits) error {
	if err := limits.Validate(); err != nil {
		return fmt.Errorf("enclave: trusted RPC: %w", err)
	}
	srv := rpc.New(e.RPC(), rpc.Config{Version: e.cfg.Version, Log: e.log.With("part", "rpc"), Counters: counters,
		Limits: limits, WatchExpiry: MaxWatchAfterBlock})
	certs := &certRenewer{every: certRenewal, make: func(now time.Time) (tls.Certificate, error) {
		return ratls.NewBoundCertificate(e.backend, e.Signer(), now)
	}}
	if _, err := certs.get(nil); err != nil {
		return fmt.Errorf("enclave: RA-TLS certificate: %w", err)
	}
	e.rpcMu.Lock()
	if e.rpcClosed {
		e.rpcMu.Unlock()
		return net.ErrClosed
	}
	e.rpcSrv = srv
	e.rpcMu.Unlock()
	err := srv.ServeCertificates(l, certs.get)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// CloseTrustedRPC stops the trusted JSON-RPC and closes its connections.
func (e *Enclave) CloseTrustedRPC() error {
	e.rpcMu.Lock()
	defer e.rpcMu.Unlock()
	e.rpcClosed = true
	if e.rpcSrv == nil {
		return nil
	}
	return e.rpcSrv.Close()
}

// certRenewal is how often the trusted RPC's RA-TLS certificate is made
// anew: well within teerex's default maximum quote age (10 minutes), which
// clients apply to the quote.
const certRenewal = 2 * time.Minute

// certRenewer hands out the trusted RPC's certificate, made anew once it is
// older than every. Making one is a key and a quote: no I/O.
type certRenewer struct {
	every time.Duration
	make  func(time.Time) (tls.Certificate, error)

	mu   sync.Mutex
	cert *tls.Certificate
	made time.Time
}

func (r *certRenewer) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cert != nil && time.Since(r.made) < r.every {
		return r.cert, nil
	}
	now := time.Now()
	c, err := r.make(now)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil // keep serving; clients judge the quote's age
		}
		return nil, err
	}
	r.cert, r.made = &c, now
	return r.cert, nil
}
