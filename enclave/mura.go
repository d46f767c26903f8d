package enclave

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/sidechain"
)

// Mutual remote attestation (MU-RA): how a validateer joining a shard gets
// the shard's shielding and state keys and its state from a validateer that
// has them (DESIGN.md §5, port 3443). Both ends present RA-TLS certificates
// made inside the enclave for this one connection, whose quotes bind the TLS
// key and name the enclave's account. Each end accepts the other only if it
// runs the same mrenclave, with a quote method and debug mode the chain's
// security flags allow, a quote younger than the chain's maximum quote age,
// and an account registered on the parentchain with the shard's authorised
// fingerprint, all read by proof at a fresh verified head. The signing key
// never leaves its enclave; the secrets travel only inside the TLS session.

// MaxProvisionSize bounds a provisioning message.
const MaxProvisionSize = 256 << 20

// muraReadChunk is how much of a message readMsg allocates before any of
// it has arrived.
const muraReadChunk = 64 << 10

// muraTimeout bounds one provisioning exchange.
const muraTimeout = 60 * time.Second

// ErrPeerRefused: mutual attestation refused the peer (another build, an
// unregistered or unauthorised enclave, a method or debug mode the chain
// forbids, a stale quote).
var ErrPeerRefused = errors.New("enclave: peer refused by mutual attestation")

// provisionRequest is what a joining enclave asks for.
type provisionRequest struct {
	Shard sidechain.ShardID `cbor:"1,keyasint"`
}

// provision is what a provider sends: the shard's secrets, its state and
// the block that state belongs to.
type provision struct {
	Error        string   `cbor:"1,keyasint,omitempty"`
	ShardSecrets []byte   `cbor:"2,keyasint,omitempty"`
	Snapshot     []byte   `cbor:"3,keyasint,omitempty"`
	StateHash    [32]byte `cbor:"4,keyasint"`
	Block        []byte   `cbor:"5,keyasint,omitempty"`
}

// checkPeerLocked is both ends' policy for the other end's quote.
func (e *Enclave) checkPeerLocked(ctx context.Context, r *attestation.Report, now time.Time) error {
	if r.MrEnclave != e.MrEnclave() {
		return fmt.Errorf("%w: peer runs mrenclave %s, this enclave %s", ErrPeerRefused, r.MrEnclave, e.MrEnclave())
	}
	if !e.viewFreshLocked() {
		return fmt.Errorf("%w: no fresh proven view of the parentchain to check the peer against", ErrPeerRefused)
	}
	v := e.sync.View
	switch {
	case r.Method == "sim" && !v.Flags.AllowSim:
		return fmt.Errorf("%w: the chain's security flags forbid simulated quotes", ErrPeerRefused)
	case r.Debug && !v.Flags.AllowDebug:
		return fmt.Errorf("%w: the chain's security flags forbid debug enclaves", ErrPeerRefused)
	}
	if age := now.Sub(r.Timestamp); age > time.Duration(v.Params.MaxQuoteAgeMs)*time.Millisecond || age < -time.Duration(v.Params.MaxFutureSkewMs)*time.Millisecond {
		return fmt.Errorf("%w: quote made %s ago, outside the chain's bounds", ErrPeerRefused, age.Round(time.Second))
	}
	holder := ratls.Holder(r)
	if holder == (account.ID{}) || holder == e.Signer() {
		return fmt.Errorf("%w: the quote names account %s", ErrPeerRefused, holder)
	}
	key := teerex.EnclaveKey(holder)
	vals, err := e.readStateLocked(ctx, v.Height, v.AppHash, [][]byte{key})
	if err != nil {
		return fmt.Errorf("%w: reading the peer's registration: %w", ErrPeerRefused, err)
	}
	var reg teerex.Enclave
	ok, err := e.decodeRead(vals, key, &reg)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrPeerRefused, err)
	case !ok:
		return fmt.Errorf("%w: account %s is not a registered enclave", ErrPeerRefused, holder)
	case reg.MrEnclave != r.MrEnclave || !enclavebridge.Authorises(reg, v.Fingerprint, v.Flags):
		return fmt.Errorf("%w: account %s, registered with mrenclave %s by %q, is not authorised for the shard (fingerprint %x)", ErrPeerRefused, holder, reg.MrEnclave, reg.Method, v.Fingerprint[:8])
	}
	return nil
}

// muraTLS returns the TLS configuration of one MU-RA connection: a fresh
// certificate naming this enclave's account, and the peer check.
func (e *Enclave) muraTLS(ctx context.Context, server bool, now time.Time) (*tls.Config, error) {
	cert, err := ratls.NewBoundCertificate(e.backend, e.Signer(), now)
	if err != nil {
		return nil, err
	}
	check := func(r *attestation.Report) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.checkPeerLocked(ctx, r, time.Now())
	}
	verifiers := ratls.Verifiers(e.backend.Verifier())
	if server {
		return ratls.MutualServerConfig(cert, verifiers, check), nil
	}
	cfg := ratls.ClientConfig(verifiers, check)
	cfg.Certificates = []tls.Certificate{cert}
	return cfg, nil
}

// ServeMuRa answers provisioning requests on l (the host's listener for
// the MU-RA port) until ctx ends or l fails. Each connection is handled on
// its own; a refused peer is logged with the reason and closed.
func (e *Enclave) ServeMuRa(ctx context.Context, l net.Listener) error {
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("enclave: mu-ra accept: %w", err)
		}
		go func() {
			if err := e.provide(ctx, conn); err != nil {
				e.log.Warn("mutual attestation: peer not provisioned", "peer", conn.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// provide runs the provider's end of one connection.
func (e *Enclave) provide(ctx context.Context, raw net.Conn) error {
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(muraTimeout))
	cfg, err := e.muraTLS(ctx, true, time.Now())
	if err != nil {
		return err
	}
	conn := tls.Server(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	var req provisionRequest
	if err := readMsg(conn, e, &req); err != nil {
		return err
	}
	e.mu.Lock()
	p, err := e.provisionLocked(req.Shard)
	e.mu.Unlock()
	if err != nil {
		_ = writeMsg(conn, e, provision{Error: err.Error()})
		return err
	}
	if err := writeMsg(conn, e, p); err != nil {
		return err
	}
	n, _, _ := e.Head()
	e.log.Info("mutual attestation: shard keys and state provisioned", "peer", raw.RemoteAddr().String(), "block", n)
	return nil
}

// provisionLocked assembles the shard's secrets, state and head block.
func (e *Enclave) provisionLocked(shard sidechain.ShardID) (provision, error) {
	if shard != e.shard {
		return provision{}, ErrUnknownShard.Wrap("%s", shard)
	}
	if e.head == nil {
		return provision{}, ErrNoBlock
	}
	secrets, err := e.keys.ExportShardSecrets()
	if err != nil {
		return provision{}, err
	}
	raw, err := e.host.LastBlock(e.shard)
	if err != nil {
		return provision{}, fmt.Errorf("enclave: head block: %w", err)
	}
	return provision{ShardSecrets: secrets, Snapshot: e.state.Snapshot(), StateHash: e.stateHash, Block: raw}, nil
}

// JoinShard runs the joining end over conn, a connection the host opened
// to a peer's MU-RA port: it attests both ends, receives the shard's keys,
// state and head block, and takes them as its own. Only an enclave with no
// sidechain block yet joins; the signing key stays its own.
func (e *Enclave) JoinShard(ctx context.Context, raw net.Conn) error {
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(muraTimeout))
	e.mu.Lock()
	fresh := e.head == nil
	e.mu.Unlock()
	if !fresh {
		return errors.New("enclave: join: this enclave already holds the shard's blocks")
	}
	cfg, err := e.muraTLS(ctx, false, time.Now())
	if err != nil {
		return err
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("enclave: join: handshake: %w", err)
	}
	if err := writeMsg(conn, e, provisionRequest{Shard: e.shard}); err != nil {
		return err
	}
	var p provision
	if err := readMsg(conn, e, &p); err != nil {
		return err
	}
	if p.Error != "" {
		return fmt.Errorf("enclave: join: the peer refused: %s", p.Error)
	}
	return e.install(p)
}

// install takes a provision: the block must be of this shard and its state
// hash the state's; the keys are sealed, the state snapshotted and the
// block stored as the head.
func (e *Enclave) install(p provision) error {
	b, err := e.sc.Decode(p.Block)
	if err != nil {
		return fmt.Errorf("enclave: join: head block: %w", err)
	}
	if err := e.checkShardOf(b); err != nil {
		return err
	}
	if b.Data.StateHashAfter != sidechain.Hash(p.StateHash) {
		return fmt.Errorf("enclave: join: state hash %x is not the head block's", p.StateHash[:8])
	}
	st, err := stf.StateFromSnapshot(p.Snapshot)
	if err != nil {
		return fmt.Errorf("enclave: join: state: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.head != nil {
		return errors.New("enclave: join: a block arrived meanwhile")
	}
	// Order matters for a crash (or a host that kills the process) at any
	// point: records sealed under the old state key go first, the block
	// last, so that a restart finds either a fresh enclave that can join
	// again or a complete join.
	if err := e.host.DeleteState(keyIdleSync); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("enclave: join: %w", err)
	}
	if err := e.keys.ImportShardSecrets(p.ShardSecrets); err != nil {
		return fmt.Errorf("enclave: join: %w", err)
	}
	oldState, oldHash, oldInbox, oldJoined := e.state, e.stateHash, e.sync.Inbox, e.sync.JoinedAt
	e.setState(st)
	e.stateHash = p.StateHash
	e.sync.JoinedAt = b.Header.Number
	// The parentchain calls this enclave verified up to the head block's
	// layer-one head are in the state it receives.
	e.dropInboxThroughLocked(b.Data.LayerOneHead.Number)
	if err := e.sealProgressLocked(b.Header.Number); err != nil {
		e.setState(oldState)
		e.stateHash, e.sync.Inbox, e.sync.JoinedAt = oldHash, oldInbox, oldJoined
		return err
	}
	if err := e.host.StoreBlock(b, p.Block); err != nil {
		e.setState(oldState)
		e.stateHash, e.sync.Inbox, e.sync.JoinedAt = oldHash, oldInbox, oldJoined
		return fmt.Errorf("enclave: join: store head block: %w", err)
	}
	e.head, e.headHash = b, e.sc.Hash(b)
	e.publishHeadLocked()
	e.lastSlot = e.slotOf(b)
	e.trackOutboxLocked(b.Header.Number)
	e.log.Info("joined the shard over mutual attestation", "block", b.Header.Number, "shielding_key_changed", true)
	return nil
}

// writeMsg sends v, CBOR, with a 4-byte length prefix.
func writeMsg(w io.Writer, e *Enclave, v any) error {
	b, err := e.codec.Marshal(v)
	if err != nil {
		return err
	}
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	if _, err := w.Write(append(n[:], b...)); err != nil {
		return fmt.Errorf("enclave: mu-ra write: %w", err)
	}
	return nil
}

// readMsg reads one length-prefixed CBOR message into v.
func readMsg(r io.Reader, e *Enclave, v any) error {
	br := bufio.NewReader(r)
	var n [4]byte
	if _, err := io.ReadFull(br, n[:]); err != nil {
		return fmt.Errorf("enclave: mu-ra read: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > MaxProvisionSize {
		return fmt.Errorf("enclave: mu-ra message of %d bytes exceeds %d", size, MaxProvisionSize)
	}
	// The buffer grows (doubling) as the bytes arrive: the length prefix
	// alone does not make the enclave allocate up to MaxProvisionSize.
	b := make([]byte, min(size, muraReadChunk))
	for read := 0; ; {
		n, err := io.ReadFull(br, b[read:])
		if read += n; err != nil {
			return fmt.Errorf("enclave: mu-ra read: %d of %d bytes: %w", read, size, err)
		}
		if read == int(size) {
			break
		}
		b = append(b, make([]byte, min(len(b), int(size)-len(b)))...)
	}
	if err := e.codec.Unmarshal(b, v); err != nil {
		return fmt.Errorf("enclave: mu-ra message: %w", err)
	}
	return nil
}

// sealProgressLocked seals, under the (new) state key, what restore needs
// to start from block n: the parentchain progress and a snapshot at n.
func (e *Enclave) sealProgressLocked(n uint64) error {
	if err := e.sealSyncLocked(n); err != nil {
		return err
	}
	if err := e.snapshotLocked(n); err != nil {
		return fmt.Errorf("enclave: snapshot of block %d: %w", n, err)
	}
	return nil
}

// NeedsJoin reports whether this enclave holds no block of a shard that
// has history on the verified parentchain (or, with request, whatever the
// chain shows): it must get the shard's keys and state from a peer
// (JoinShard) before it can serve or author.
func (e *Enclave) NeedsJoin(request bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.head != nil {
		return false
	}
	return request || (e.lc.Height() > 0 && !e.shardIsNewLocked())
}
