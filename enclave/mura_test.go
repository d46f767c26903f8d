package enclave

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
)

// peer starts another enclave beside env's on the same parentchain, with
// its own host and machine (code is its build: "v1" is env's).
func (env *chainEnv) peer(code string) *chainEnv {
	env.t.Helper()
	h := newFakeHost()
	h.chain = env.c
	p := &chainEnv{t: env.t, m: newMachine(env.t, code), h: h, c: env.c, cfg: env.cfg, logs: &lockedBuffer{}}
	p.e = p.start()
	return p
}

// registerPeer funds and registers p's enclave (unattested), relayed
// through p's host; both enclaves then sync.
func (env *chainEnv) registerPeer(p *chainEnv) {
	env.t.Helper()
	env.mustOK(env.block(env.sign(dev(env.t, "Charlie"), balances.ModuleName, "transfer", balances.TransferArgs{Dest: p.e.Signer(), Amount: teer(10)})))
	if _, err := p.e.Register(context.Background(), "wss://peer", true); err != nil {
		env.t.Fatal(err)
	}
	p.mustOK(p.block())
	env.syncAll(p)
}

// syncAll seals a block and brings every enclave to the same verified head.
func (env *chainEnv) syncAll(others ...*chainEnv) {
	env.t.Helper()
	env.block()
	env.sync()
	for _, o := range others {
		o.sync()
	}
}

// join connects p to env's enclave over a loopback MU-RA listener.
func (env *chainEnv) join(p *chainEnv) error {
	env.t.Helper()
	// The provider serves until the test ends: cancelled when the join
	// returned, its handshake could report the cancellation instead of why
	// it refused the joiner (crypto/tls prefers the context's error).
	serve, stop := context.WithCancel(context.Background())
	env.t.Cleanup(stop)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		env.t.Fatal(err)
	}
	go env.e.ServeMuRa(serve, l)
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		env.t.Fatal(err)
	}
	return p.e.JoinShard(ctx, conn)
}

// TestJoinShardOverMutualAttestation: a second enclave of the same build,
// registered on the chain, gets the shard's keys, state and head from the
// first; afterwards both serve the same shielding key and balances, also
// after a restart.
func TestJoinShardOverMutualAttestation(t *testing.T) {
	env := newChainEnv(t)
	a := env.e
	env.register()
	alice := dev(t, "Alice")
	mustBlock(t, a, 1)
	submit(t, a, alice, setBalance(alice.ID(), teer(42)), 0)
	mustBlock(t, a, 2)

	b := env.peer("v1")
	if string(b.e.ShieldingPublicKey()) == string(a.ShieldingPublicKey()) {
		t.Fatal("a fresh enclave already has the shard's shielding key")
	}
	env.registerPeer(b)
	if err := env.join(b); err != nil {
		t.Fatalf("join: %v", err)
	}
	if string(b.e.ShieldingPublicKey()) != string(a.ShieldingPublicKey()) {
		t.Fatal("the joined enclave serves another shielding key")
	}
	if got, want := header(t, b.e), header(t, a); got != want {
		t.Fatalf("joined head %+v, provider's %+v", got, want)
	}
	if got := balance(t, b.e, alice); got != teer(42).String() {
		t.Fatalf("Alice on the joined enclave = %s", got)
	}
	if b.e.Signer() == a.Signer() {
		t.Fatal("the signing key travelled")
	}
	// A restart keeps what it joined with.
	b.e = b.start()
	if string(b.e.ShieldingPublicKey()) != string(a.ShieldingPublicKey()) || header(t, b.e) != header(t, a) {
		t.Fatal("the joined keys or head did not survive a restart")
	}
	// Joining again, with blocks, is refused.
	if err := env.join(b); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("second join: %v", err)
	}
}

// TestMutualAttestationRefusesStrangers: another build, an unregistered
// enclave, and (once the chain forbids simulated quotes) every simulated
// peer get nothing; their keys stay their own.
func TestMutualAttestationRefusesStrangers(t *testing.T) {
	env := newChainEnv(t)
	a := env.e
	env.register()
	mustBlock(t, a, 1)

	other := env.peer("v2") // another mrenclave
	env.registerPeer(other)
	unregistered := env.peer("v1")
	env.syncAll(other, unregistered)
	for _, c := range []struct {
		name      string
		p         *chainEnv
		joinErr   string // in the joiner's error: it refused the provider
		providerr string // in the provider's log: it refused the joiner
	}{
		{"another build", other, "peer runs mrenclave", ""},
		{"an unregistered enclave", unregistered, "bad certificate", "is not a registered enclave"},
	} {
		key := string(c.p.e.ShieldingPublicKey())
		err := env.join(c.p)
		if err == nil || !strings.Contains(err.Error(), c.joinErr) {
			t.Fatalf("%s: join %v, want an error about %q", c.name, err, c.joinErr)
		}
		if string(c.p.e.ShieldingPublicKey()) != key || c.p.e.Ready() {
			t.Fatalf("%s: keys or state changed after a refused join", c.name)
		}
		if c.providerr != "" {
			waitLog(t, env.logs, c.providerr)
		}
	}

	// The chain forbids simulated quotes: a registered peer of the same
	// build is refused too.
	peer := env.peer("v1")
	env.registerPeer(peer)
	call := env.call(teerex.ModuleName, "set_security_flags", teerex.SetSecurityFlagsArgs{Flags: teerex.SecurityFlags{AllowSkip: true, AllowSim: false, AllowDebug: true}})
	env.mustOK(env.block(env.sign(dev(t, "Alice"), sudo.ModuleName, "sudo", sudo.SudoArgs{Call: call})))
	env.syncAll(peer)
	if err := env.join(peer); !errors.Is(err, ErrPeerRefused) || !strings.Contains(err.Error(), "forbid simulated quotes") {
		t.Fatalf("join with a simulated quote the chain forbids: %v", err)
	}
	if peer.e.Ready() {
		t.Fatal("the refused peer took the shard's state")
	}
}

// waitLog waits until the log holds s (the provider logs asynchronously).
func waitLog(t *testing.T, l *lockedBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", s, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJoinInterruptedBeforeItsBlockIsStoredCanBeRetried: the joiner's host
// fails (or is killed) after the shard's keys were taken but before the head
// block is stored. The restarted enclave starts (nothing sealed under the
// old key stands in its way), has no block, and joins again.
func TestJoinInterruptedBeforeItsBlockIsStoredCanBeRetried(t *testing.T) {
	env := newChainEnv(t)
	a := env.e
	env.register()
	mustBlock(t, a, 1)
	b := env.peer("v1")
	env.registerPeer(b)
	env.syncAll(b)
	b.e.mu.Lock()
	b.e.saveIdleLocked() // as every idleSaveEvery parentchain blocks
	b.e.mu.Unlock()
	if _, err := b.h.GetState(keyIdleSync); err != nil {
		t.Fatalf("no idle progress sealed: %v", err)
	}

	b.h.mu.Lock()
	b.h.failStore = true
	b.h.mu.Unlock()
	if err := env.join(b); err == nil {
		t.Fatal("a join whose block could not be stored succeeded")
	}
	if b.e.Ready() {
		t.Fatal("a failed join left a head")
	}
	b.h.mu.Lock()
	b.h.failStore = false
	b.h.mu.Unlock()
	b.e = b.start() // the host restarts it
	if b.e.Ready() {
		t.Fatal("the restarted enclave has a head")
	}
	env.syncAll(b)
	if err := env.join(b); err != nil {
		t.Fatalf("join after the interrupted one: %v", err)
	}
	if string(b.e.ShieldingPublicKey()) != string(a.ShieldingPublicKey()) || header(t, b.e) != header(t, a) {
		t.Fatal("the second join did not take the shard's keys and head")
	}
}
