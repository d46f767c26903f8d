package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/shielding"
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// defaultTrustedKeystore is the directory under which each shard's trusted
// keystore lives, one subdirectory per shard (base58).
const defaultTrustedKeystore = "my_trusted_keystore"

// indirectGrace is how long the CLI keeps polling a signer's trusted nonce
// after a validateer confirmed the parentchain block of an indirect call,
// in case the worker it asks has not imported that block yet.
const indirectGrace = 10 * time.Second

// The xt-signer (as Integritee's CLI calls it) signs and pays for the
// parentchain extrinsic (enclavebridge.invoke) that carries an indirect
// invocation. It defaults to defaultXtSigner, never to the trusted call's own
// (incognito) account: signing the extrinsic with that account would publish
// its key on the parentchain, link it to its calls, and fail whenever it has
// no parentchain funds. The trusted call itself is always signed by its own
// account, inside the encrypted payload.
const (
	defaultXtSigner = "//Alice"
	xtSignerFlag    = "xt-signer"
	// pcSignerFlag is the deprecated alias of --xt-signer.
	pcSignerFlag = "parentchain-signer"
)

// Errors of trusted calls.
var (
	// errNotExecuted: an indirect call's failure is only visible as a
	// nonce that does not move.
	errNotExecuted = errors.New("the validateer did not execute the call; check its log")
	errInvalid     = errors.New("the validateer refused the call as invalid")
	errDropped     = errors.New("the validateer dropped the call from its pool")
)

// trustedEnv holds the trusted group's flags, parsed in its
// PersistentPreRunE.
type trustedEnv struct {
	*workerEnv
	mrenclaveArg string
	shardArg     string
	direct       bool
	timeout      time.Duration
	keystoreDir  string
	xtSignerArg  string // -a/--xt-signer
	pcSignerArg  string // --parentchain-signer, deprecated alias of --xt-signer

	mrenclave *attestation.MrEnclave // --mrenclave, if given
	shard     *sidechain.ShardID     // --shard, if given
}

// parseFlags checks the group's flags before anything dials; changed tells
// which flags the command line set.
func (t *trustedEnv) parseFlags(changed func(name string) bool) error {
	t.mrenclave, t.shard = nil, nil
	if t.mrenclaveArg != "" {
		m, err := attestation.ParseMrEnclave(t.mrenclaveArg)
		if err != nil {
			return fmt.Errorf("--mrenclave: %w", err)
		}
		t.mrenclave = &m
	}
	if t.shardArg != "" {
		s, err := sidechain.ParseShardID(t.shardArg)
		if err != nil {
			return fmt.Errorf("--shard: %w", err)
		}
		t.shard = &s
	}
	if err := checkTimeout(t.timeout); err != nil {
		return err
	}
	if t.keystoreDir == "" {
		return errors.New("--trusted-keystore: must name a directory")
	}
	flag := "--" + xtSignerFlag
	named := changed(xtSignerFlag)
	if changed(pcSignerFlag) {
		if named {
			return fmt.Errorf("--%s is a deprecated alias of -a/--%s; give only --%s", pcSignerFlag, xtSignerFlag, xtSignerFlag)
		}
		flag = "--" + pcSignerFlag
		t.xtSignerArg, named = t.pcSignerArg, true
	}
	if _, err := account.ResolveID(t.xtSignerArg); err != nil {
		return fmt.Errorf("%s %q: not an account (want a dev seed //Name, an SS58 address or a 0x-hex public key): %w", flag, t.xtSignerArg, err)
	}
	if t.direct && named {
		return fmt.Errorf("%s applies to indirect invocations only (it signs the parentchain extrinsic); drop --direct or the signer", flag)
	}
	return nil
}

// xtSigner resolves the xt-signer, a parentchain account: a dev seed or an
// account of the parentchain keystore (--keystore).
func (t *trustedEnv) xtSigner() (*account.Pair, error) {
	p, err := account.ResolvePair(t.xtSignerArg, t.keystore())
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", xtSignerFlag, err)
	}
	return p, nil
}

// keystore returns the trusted keystore of shard.
func (t *trustedEnv) keystoreOf(shard sidechain.ShardID) *account.Keystore {
	return account.NewKeystore(trustedKeystorePath(t.keystoreDir, shard))
}

func trustedKeystorePath(dir string, shard sidechain.ShardID) string {
	return filepath.Join(dir, shard.String())
}

// shardOnly returns the shard without dialling the worker if the flags
// tell it.
func (t *trustedEnv) shardOnly(ctx context.Context) (sidechain.ShardID, error) {
	switch {
	case t.shard != nil:
		return *t.shard, nil
	case t.mrenclave != nil:
		return sidechain.ShardID(*t.mrenclave), nil
	}
	s, err := t.open(ctx)
	if err != nil {
		return sidechain.ShardID{}, err
	}
	defer s.Close()
	return s.shard, nil
}

// session is a connection to the worker with the mrenclave and the shard
// settled.
type session struct {
	*trustedEnv
	c         *rpcclient.Client
	mrenclave attestation.MrEnclave
	shard     sidechain.ShardID
}

// open dials the worker. The mrenclave is --mrenclave or else the worker's
// fingerprint (attested unless --insecure); the shard is --shard or else
// the mrenclave.
func (t *trustedEnv) open(ctx context.Context) (*session, error) {
	c, err := t.dialWorker(ctx, t.mrenclave)
	if err != nil {
		return nil, err
	}
	s := &session{trustedEnv: t, c: c}
	if t.mrenclave != nil {
		s.mrenclave = *t.mrenclave
	} else {
		if s.mrenclave, err = workerFingerprint(ctx, c); err != nil {
			c.Close() //nolint:errcheck
			return nil, err
		}
		if r := c.Report(); r != nil && r.MrEnclave != s.mrenclave {
			c.Close() //nolint:errcheck
			return nil, fmt.Errorf("worker's fingerprint %s differs from its attested enclave %s", s.mrenclave, r.MrEnclave)
		}
	}
	s.shard = sidechain.ShardID(s.mrenclave)
	if t.shard != nil {
		s.shard = *t.shard
	}
	return s, nil
}

func (s *session) Close() { s.c.Close() } //nolint:errcheck

func (s *session) keystore() *account.Keystore { return s.keystoreOf(s.shard) }

// pair resolves a trusted account argument to a key pair: a dev seed or an
// account of the shard's trusted keystore.
func (s *session) pair(what, arg string) (*account.Pair, error) {
	p, err := account.ResolvePair(arg, s.keystore())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return p, nil
}

// get runs a getter signed by p.
func (s *session) get(ctx context.Context, p *account.Pair, g trusted.Getter) (string, error) {
	b, err := (&trusted.Operation{Getter: trusted.SignGetter(p, g, s.shard)}).Encode()
	if err != nil {
		return "", err
	}
	v, err := s.c.ExecuteGetter(ctx, s.shard, b)
	if err != nil {
		return "", fmt.Errorf("state_executeGetter: %w", err)
	}
	return v, nil
}

// nonce returns p's next trusted nonce.
func (s *session) nonce(ctx context.Context, p *account.Pair) (uint64, error) {
	id := p.ID()
	v, err := s.get(ctx, p, trusted.Getter{Nonce: &id})
	if err != nil {
		return 0, fmt.Errorf("nonce of %s: %w", id, err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("nonce of %s: the worker answered %q, not an integer", id, v)
	}
	return n, nil
}

// sealCall signs call as p with nonce for the enclave mrenclave serving
// shard, and encrypts the resulting operation to the shielding key.
func sealCall(p *account.Pair, call trusted.Call, nonce uint64, mrenclave attestation.MrEnclave, shard sidechain.ShardID, shieldingKey []byte) (*trusted.SignedCall, []byte, error) {
	sc := trusted.SignCall(p, call, nonce, mrenclave, shard)
	plain, err := (&trusted.Operation{Call: sc}).Encode()
	if err != nil {
		return nil, nil, fmt.Errorf("encode the call: %w", err)
	}
	ct, err := shielding.Encrypt(shieldingKey, plain)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt the call: %w", err)
	}
	return sc, ct, nil
}

// awaitInBlock follows a watched operation's statuses until it is in a
// sidechain block (its hash), refused, dropped, or ctx ends.
func awaitInBlock(ctx context.Context, updates <-chan trustedrpc.Status) (sidechain.Hash, error) {
	last := "none"
	for {
		select {
		case st, ok := <-updates:
			if !ok {
				return sidechain.Hash{}, fmt.Errorf("the worker ended the watch after status %s without a final status", last)
			}
			last = st.Kind
			switch st.Kind {
			case trustedrpc.InSidechainBlock, trustedrpc.Finalized:
				return st.BlockHash, nil // Finalized: the InSidechainBlock before it was dropped by a lagging reader
			case trustedrpc.Invalid:
				return sidechain.Hash{}, fmt.Errorf("%w: %s", errInvalid, st.Reason)
			case trustedrpc.Dropped:
				return sidechain.Hash{}, errDropped
			}
		case <-ctx.Done():
			return sidechain.Hash{}, fmt.Errorf("not in a sidechain block in time (last status: %s): %w", last, ctx.Err())
		}
	}
}

// awaitIndirect waits until a validateer has executed an indirect call
// included in the parentchain block at height: until the signer's trusted
// nonce (nonceNow) has moved past past (the call's nonce) and a validateer
// confirmed processing the block (processed returns the confirmation's
// height, or 0). A confirmation without the nonce moving, for grace, means
// the call failed. It returns the confirmation's height and the signer's
// nonce.
func awaitIndirect(ctx context.Context, nonceNow func(context.Context) (uint64, error), processed func(context.Context) (int64, error),
	past uint64, height int64, timeout, grace, interval time.Duration) (int64, uint64, error) {
	var (
		executed bool
		nonce    uint64
		at       int64
		seen     time.Time
	)
	err := poll(ctx, interval, func() (bool, error) {
		var err error
		if !executed {
			if nonce, err = nonceNow(ctx); err != nil {
				return false, err
			}
			executed = nonce > past
		}
		if at == 0 {
			if at, err = processed(ctx); err != nil {
				return false, err
			}
			if at > 0 {
				seen = time.Now()
			}
		}
		switch {
		case executed && at > 0:
			return true, nil
		case at > 0 && time.Since(seen) >= grace:
			return false, fmt.Errorf("%w (a validateer confirmed processing parentchain block %d, but the signer's trusted nonce is still %d)", errNotExecuted, height, nonce)
		}
		return false, nil
	})
	switch {
	case err == nil || !timedOut(err):
	case !executed:
		err = fmt.Errorf("%w (within --timeout %s no validateer confirmed processing parentchain block %d, and the signer's trusted nonce is still %d)", errNotExecuted, timeout, height, nonce)
	default:
		err = fmt.Errorf("the call executed (the signer's trusted nonce is now %d), but within --timeout %s no validateer confirmed processing parentchain block %d: %w", nonce, timeout, height, err)
	}
	return at, nonce, err
}

// callSpec is a trusted call ready to sign and the trusted account that
// signs it (for an indirect invocation, the xt-signer signs the parentchain
// extrinsic that carries it).
type callSpec struct {
	signer *account.Pair
	call   trusted.Call
}

// runCall signs, encrypts and submits a call and waits for its execution:
// directly (in a sidechain block) or indirectly (through enclavebridge.invoke
// on the parentchain). build resolves the call's accounts once the session
// (and so the keystore) is known.
func (t *trustedEnv) runCall(cmd *cobra.Command, build func(*session) (callSpec, error)) error {
	ctx, cancel := context.WithTimeout(ctxOf(cmd), t.timeout)
	defer cancel()
	s, err := t.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	spec, err := build(s)
	if err != nil {
		return err
	}
	var xt *account.Pair
	if !t.direct {
		if xt, err = t.xtSigner(); err != nil {
			return err
		}
	}
	if err := requireShard(ctx, s.c, s.shard); err != nil {
		return err
	}
	next, err := s.nonce(ctx, spec.signer)
	if err != nil {
		return err
	}
	nonce := next
	if f := cmd.Flags().Lookup("nonce"); f != nil && f.Changed {
		if nonce, err = cmd.Flags().GetUint64("nonce"); err != nil {
			return err
		}
	}
	key, err := s.c.ShieldingKey(ctx)
	if err != nil {
		return fmt.Errorf("author_getShieldingKey: %w", err)
	}
	sc, ct, err := sealCall(spec.signer, spec.call, nonce, s.mrenclave, s.shard, key)
	if err != nil {
		return err
	}
	name := spec.call.Name()
	hash := sc.Hash()
	if t.direct {
		_, updates, err := s.c.SubmitAndWatch(ctx, s.shard, ct)
		if err != nil {
			return fmt.Errorf("%s: author_submitAndWatchExtrinsic: %w", name, err)
		}
		block, err := awaitInBlock(ctx, updates)
		if err != nil {
			if timedOut(err) {
				return fmt.Errorf("%s 0x%x: %w (--timeout %s)", name, hash[:], err, t.timeout)
			}
			return fmt.Errorf("%s 0x%x: %w", name, hash[:], err)
		}
		fmt.Fprintln(t.out, block)
	} else {
		node, err := t.nodeClient()
		if err != nil {
			return err
		}
		// The call has executed once the signer's nonce moves past both
		// its own nonce and the nonce before it (a stale --nonce never
		// executes).
		inc, at, n, err := s.invoke(ctx, node, xt, spec.signer, max(nonce, next), ct)
		if err != nil {
			return fmt.Errorf("%s 0x%x: %w", name, hash[:], err)
		}
		fmt.Fprintf(t.out, "%s invoked in parentchain block %d (tx %s, signed by xt-signer %s) and executed by the validateer (block confirmed in %d; trusted nonce of %s now %d)\n",
			name, inc.Height, inc.Hash, xt.ID(), at, spec.signer.ID(), n)
	}
	if u := spec.call.Unshield; u != nil {
		node, err := t.nodeClient()
		if err != nil {
			return err
		}
		h, err := waitUnshielded(ctx, node, s.shard, hash)
		if err != nil {
			if timedOut(err) {
				return fmt.Errorf("%s 0x%x executed on the sidechain, but the parentchain has not paid it out within --timeout %s; check the validateer's log", name, hash[:], t.timeout)
			}
			return err
		}
		fmt.Fprintf(t.out, "unshielded %s planck to %s: paid on the parentchain in block %d\n", u.Amount, u.To, h)
	}
	return nil
}

// invoke submits the encrypted call with enclavebridge.invoke, signed by
// the xt-signer xt, and waits until a validateer executed it (signer's
// trusted nonce moved past past).
func (s *session) invoke(ctx context.Context, node *client.Client, xt, signer *account.Pair, past uint64, ct []byte) (*client.Included, int64, uint64, error) {
	call, err := types.NewCall(node.Codec(), enclavebridge.ModuleName, "invoke", enclavebridge.InvokeArgs{Shard: s.shard, Ciphertext: ct})
	if err != nil {
		return nil, 0, 0, err
	}
	inc, err := node.Submit(ctx, xt, call)
	if err != nil {
		if timedOut(err) {
			return nil, 0, 0, fmt.Errorf("enclavebridge.invoke not in a block within --timeout %s: %w", s.timeout, err)
		}
		return nil, 0, 0, fmt.Errorf("enclavebridge.invoke: %w", explainUnknownShard(err))
	}
	at, n, err := awaitIndirect(ctx,
		func(ctx context.Context) (uint64, error) { return s.nonce(ctx, signer) },
		func(ctx context.Context) (int64, error) { return processedSince(ctx, node, s.shard, inc.Height) },
		past, inc.Height, s.timeout, indirectGrace, pollEvery)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("invoked in parentchain block %d (tx %s): %w", inc.Height, inc.Hash, err)
	}
	return inc, at, n, nil
}

func trustedCmd(w *workerEnv) *cobra.Command {
	cmd, _ := newTrustedCmd(w)
	return cmd
}

// newTrustedCmd returns the trusted group and the environment its flags
// parse into.
func newTrustedCmd(w *workerEnv) (*cobra.Command, *trustedEnv) {
	t := &trustedEnv{workerEnv: w}
	cmd := &cobra.Command{
		Use:   "trusted [--mrenclave M] [--shard S] [--direct | -a XT_SIGNER] CMD",
		Short: "Sidechain accounts, calls and getters, through a validateer (-U/-P)",
		Long: `trusted talks to a validateer's trusted RPC (-U/-P). Unless --insecure, the CLI
accepts the worker only if its TLS certificate carries a fresh attestation, of a method
the parentchain's security flags allow, of an enclave registered on the parentchain
with that method and authorised for the worker's shard (and of --mrenclave, if
given), all read by proof against a header the CLI verifies.

--mrenclave defaults to the worker's fingerprint and --shard to the mrenclave; both
are base58 or 0x-hex. Calls (transfer, set-balance, unshield-funds) are signed over
(call, nonce, mrenclave, shard) and encrypted to the shard's shielding key. With
--direct they go to the worker (author_submitAndWatchExtrinsic) and the command prints
the hash of the sidechain block that executed them; without it they go through the
parentchain (enclavebridge.invoke) and the command waits until the validateer confirmed
the parentchain block and the signer's trusted nonce moved.

-a/--xt-signer (default //Alice) is the parentchain account that signs and pays for
that enclavebridge.invoke extrinsic: a dev seed or an account of the parentchain
keystore (--keystore). The call itself stays signed by its own trusted account inside
the encrypted payload; the trusted account signs the extrinsic only if you name it as
--xt-signer, which publishes it on the parentchain. --parentchain-signer is a
deprecated alias of --xt-signer.

Trusted accounts (FROM, ACCT, --root, --signer) are dev seeds (//Name) or accounts of
the trusted keystore ./my_trusted_keystore/<shard>; TO may be any account. Every wait
ends after --timeout.`,
		Args: cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := t.parseFlags(cmd.Flags().Changed); err != nil {
				return err
			}
			if cmd.Flags().Changed(pcSignerFlag) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: --%s is deprecated; use -a/--%s\n", pcSignerFlag, xtSignerFlag)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			var names []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					names = append(names, c.Name())
				}
			}
			return fmt.Errorf("trusted needs a command: one of %s", strings.Join(names, ", "))
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&t.mrenclaveArg, "mrenclave", "", "enclave measurement calls are signed for, base58 (default: the worker's fingerprint)")
	pf.StringVar(&t.shardArg, "shard", "", "shard, base58 (default: the mrenclave)")
	pf.BoolVar(&t.direct, "direct", false, "send calls straight to the worker instead of through the parentchain")
	pf.DurationVar(&t.timeout, "timeout", defaultTimeout, "how long to wait for the worker, blocks and execution")
	pf.StringVar(&t.keystoreDir, "trusted-keystore", defaultTrustedKeystore, "directory of the trusted keystores, one per shard")
	pf.StringVarP(&t.xtSignerArg, xtSignerFlag, "a", defaultXtSigner, "parentchain account that signs and pays for the extrinsic (enclavebridge.invoke) of an indirect invocation: a dev seed or an account of --keystore")
	pf.StringVar(&t.pcSignerArg, pcSignerFlag, "", "deprecated alias of --"+xtSignerFlag)
	_ = pf.MarkHidden(pcSignerFlag)
	cmd.AddCommand(
		trustedNewAccountCmd(t),
		trustedListAccountsCmd(t),
		trustedBalanceCmd(t),
		trustedNonceCmd(t),
		trustedTransferCmd(t),
		trustedSetBalanceCmd(t),
		trustedUnshieldCmd(t),
		trustedFingerprintCmd(t),
		trustedShardCmd(t), trustedShieldingKeyCmd(t),
		trustedHeaderCmd(t),
		trustedTotalIssuanceCmd(t),
		trustedBenchmarkCmd(t),
		trustedBenchmarkIndirectCmd(t),
	)
	return cmd, t
}

// withTimeout returns the command's context bounded by --timeout.
func (t *trustedEnv) withTimeout(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctxOf(cmd), t.timeout)
}

func trustedNewAccountCmd(t *trustedEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "new-account",
		Short: "Create a trusted account in the shard's keystore and print its SS58 address",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := t.withTimeout(cmd)
			defer cancel()
			shard, err := t.shardOnly(ctx)
			if err != nil {
				return err
			}
			p, err := t.keystoreOf(shard).Generate()
			if err != nil {
				return err
			}
			fmt.Fprintln(t.out, p.ID())
			return nil
		},
	}
}

func trustedListAccountsCmd(t *trustedEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "list-accounts",
		Short: "Print the SS58 addresses of the shard's trusted keystore",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := t.withTimeout(cmd)
			defer cancel()
			shard, err := t.shardOnly(ctx)
			if err != nil {
				return err
			}
			ids, err := t.keystoreOf(shard).List()
			if err != nil {
				return err
			}
			for _, id := range ids {
				fmt.Fprintln(t.out, id)
			}
			return nil
		},
	}
}

// parseAccountArg checks an account argument's form (dev seed, SS58 or
// 0x-hex) before anything dials.
func parseAccountArg(what, arg string) (account.ID, error) {
	id, err := account.ResolveID(arg)
	if err != nil {
		return id, fmt.Errorf("%s: %w", what, err)
	}
	return id, nil
}

// getterCmd builds balance and nonce: a getter about ACCT signed by ACCT.
func getterCmd(t *trustedEnv, use, short string, getter func(*account.ID) trusted.Getter) *cobra.Command {
	return &cobra.Command{
		Use:   use + " ACCT",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := parseAccountArg("ACCT", args[0]); err != nil {
				return err
			}
			ctx, cancel := t.withTimeout(cmd)
			defer cancel()
			s, err := t.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			p, err := s.pair("ACCT", args[0])
			if err != nil {
				return err
			}
			id := p.ID()
			v, err := s.get(ctx, p, getter(&id))
			if err != nil {
				return fmt.Errorf("%s of %s: %w", use, id, err)
			}
			fmt.Fprintln(t.out, v)
			return nil
		},
	}
}

func trustedBalanceCmd(t *trustedEnv) *cobra.Command {
	return getterCmd(t, "balance", "Print a trusted account's free balance in planck (the getter is signed by ACCT)",
		func(id *account.ID) trusted.Getter { return trusted.Getter{FreeBalance: id} })
}

func trustedNonceCmd(t *trustedEnv) *cobra.Command {
	return getterCmd(t, "nonce", "Print a trusted account's next nonce (the getter is signed by ACCT)",
		func(id *account.ID) trusted.Getter { return trusted.Getter{Nonce: id} })
}

// transferArgs are a transfer's or an unshielding's parsed arguments.
type transferArgs struct {
	from   string
	to     account.ID
	amount types.Balance
}

func parseTransferArgs(args []string, positive bool) (transferArgs, error) {
	var a transferArgs
	if _, err := parseAccountArg("FROM", args[0]); err != nil {
		return a, err
	}
	a.from = args[0]
	var err error
	if a.to, err = parseAccountArg("TO", args[1]); err != nil {
		return a, err
	}
	if a.amount, err = parseAmount(args[2]); err != nil {
		return a, err
	}
	if positive && a.amount.IsZero() {
		return a, fmt.Errorf("amount %q: must be positive", args[2])
	}
	return a, nil
}

// addNonceFlag gives a call command --nonce, which runCall reads.
func addNonceFlag(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().Uint64("nonce", 0, "sign with this nonce instead of the signer's next one")
	return cmd
}

func trustedTransferCmd(t *trustedEnv) *cobra.Command {
	return addNonceFlag(&cobra.Command{
		Use:   "transfer FROM TO AMOUNT",
		Short: "Transfer planck on the sidechain",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := parseTransferArgs(args, false)
			if err != nil {
				return err
			}
			return t.runCall(cmd, func(s *session) (callSpec, error) {
				from, err := s.pair("FROM", a.from)
				if err != nil {
					return callSpec{}, err
				}
				return callSpec{signer: from, call: trusted.Call{Transfer: &trusted.Transfer{From: from.ID(), To: a.to, Amount: a.amount}}}, nil
			})
		},
	})
}

func trustedSetBalanceCmd(t *trustedEnv) *cobra.Command {
	root := "//Alice"
	cmd := &cobra.Command{
		Use:   "set-balance ACCT AMOUNT",
		Short: "Set a trusted account's free balance (signed by the sidechain's root, --root)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			who, err := parseAccountArg("ACCT", args[0])
			if err != nil {
				return err
			}
			amount, err := parseAmount(args[1])
			if err != nil {
				return err
			}
			if _, err := parseAccountArg("--root", root); err != nil {
				return err
			}
			return t.runCall(cmd, func(s *session) (callSpec, error) {
				r, err := s.pair("--root", root)
				if err != nil {
					return callSpec{}, err
				}
				return callSpec{signer: r, call: trusted.Call{SetBalance: &trusted.SetBalance{Who: who, Free: amount}}}, nil
			})
		},
	}
	cmd.Flags().StringVar(&root, "root", root, "the sidechain's root account, which signs the call")
	return addNonceFlag(cmd)
}

func trustedUnshieldCmd(t *trustedEnv) *cobra.Command {
	return addNonceFlag(&cobra.Command{
		Use:   "unshield-funds FROM TO AMOUNT",
		Short: "Move planck from a trusted account to a parentchain account (TO) and wait for the payout",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := parseTransferArgs(args, true)
			if err != nil {
				return err
			}
			return t.runCall(cmd, func(s *session) (callSpec, error) {
				from, err := s.pair("FROM", a.from)
				if err != nil {
					return callSpec{}, err
				}
				return callSpec{signer: from, call: trusted.Call{Unshield: &trusted.Unshield{From: from.ID(), To: a.to, Amount: a.amount, Shard: s.shard}}}, nil
			})
		},
	})
}

func trustedFingerprintCmd(t *trustedEnv) *cobra.Command {
	return workerValueCmd(t, "get-fingerprint", "Print the worker's mrenclave (base58)", func(ctx context.Context, c *rpcclient.Client) (fmt.Stringer, error) {
		return workerFingerprint(ctx, c)
	})
}

func trustedShardCmd(t *trustedEnv) *cobra.Command {
	return workerValueCmd(t, "get-shard", "Print the shard the worker serves (base58)", func(ctx context.Context, c *rpcclient.Client) (fmt.Stringer, error) {
		return workerShard(ctx, c)
	})
}

func trustedShieldingKeyCmd(t *trustedEnv) *cobra.Command {
	return workerValueCmd(t, "get-shielding-key", "Print the shard's shielding public key as the worker serves it (hex); every validateer of a shard serves the same", func(ctx context.Context, c *rpcclient.Client) (fmt.Stringer, error) {
		k, err := c.ShieldingKey(ctx)
		if err != nil {
			return nil, err
		}
		return hexString(k), nil
	})
}

// hexString prints bytes as 0x-hex.
type hexString []byte

func (h hexString) String() string { return "0x" + hex.EncodeToString(h) }

// workerValueCmd is a command that prints one value the worker reports.
func workerValueCmd(t *trustedEnv, use, short string, get func(context.Context, *rpcclient.Client) (fmt.Stringer, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := t.withTimeout(cmd)
			defer cancel()
			c, err := t.dialWorker(ctx, t.mrenclave)
			if err != nil {
				return err
			}
			defer c.Close() //nolint:errcheck
			v, err := get(ctx, c)
			if err != nil {
				return err
			}
			fmt.Fprintln(t.out, v)
			return nil
		},
	}
}

func trustedHeaderCmd(t *trustedEnv) *cobra.Command {
	return &cobra.Command{
		Use:   "get-sidechain-header",
		Short: "Print the shard's latest sidechain block header (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := t.withTimeout(cmd)
			defer cancel()
			s, err := t.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			h, err := s.c.Header(ctx, s.shard)
			if err != nil {
				return fmt.Errorf("chain_getHeader: %w", err)
			}
			b, err := json.MarshalIndent(h, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(t.out, string(b))
			return nil
		},
	}
}

func trustedTotalIssuanceCmd(t *trustedEnv) *cobra.Command {
	signer := "//Alice"
	cmd := &cobra.Command{
		Use:   "get-total-issuance",
		Short: "Print the shard's total issuance in planck",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := parseAccountArg("--signer", signer); err != nil {
				return err
			}
			ctx, cancel := t.withTimeout(cmd)
			defer cancel()
			s, err := t.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			p, err := s.pair("--signer", signer)
			if err != nil {
				return err
			}
			v, err := s.get(ctx, p, trusted.Getter{TotalIssuance: &trusted.TotalIssuanceQuery{}})
			if err != nil {
				return fmt.Errorf("total issuance: %w", err)
			}
			fmt.Fprintln(t.out, v)
			return nil
		},
	}
	cmd.Flags().StringVar(&signer, "signer", signer, "trusted account that signs the getter")
	return cmd
}
