package enclave

import (
	"slices"
	"sync"

	"github.com/integritee-go/integritee/enclave/stf"
)

// State snapshots. Every SnapshotInterval blocks the enclave stores its
// whole state, sealed, so that a restart replays at most that many blocks.
// At a million accounts encoding, sealing and storing it took 3.6 s, which
// block production, imports and the RPC's writers spent waiting for the
// enclave's lock (docs/benchmarks.md). So the commit takes only a frozen
// copy of the state under the lock (a copy of its map), and one goroutine
// at a time encodes, seals and stores it; the snapshot index, which restore
// reads, is updated under the lock, and only if the state was not replaced
// meanwhile (a rollback or a join: snapEpoch), so that no snapshot of a
// losing branch is listed. Restore also checks a snapshot against the
// stored block of its number (rebuildStateLocked), which makes a listed
// snapshot of another branch harmless whatever the host restores.

// snapJob is a snapshot to take: the frozen state after block n.
type snapJob struct {
	n         uint64
	stateHash [32]byte
	state     *stf.State
	epoch     uint64 // e.snapEpoch at the commit
}

// snapshotter runs the snapshot jobs: one at a time, the latest due first;
// a job not yet started gives way to a newer one.
type snapshotter struct {
	mu      sync.Mutex
	next    *snapJob
	running bool
	idle    sync.Cond // signalled when running turns false
}

// snapshotDueLocked records that block n's state is to be snapshotted.
func (e *Enclave) snapshotDueLocked(n uint64) {
	e.snapDue = &snapJob{n: n, stateHash: e.stateHash, state: e.state.Frozen(), epoch: e.snapEpoch}
}

// startSnapshot hands a due snapshot to the snapshot goroutine; it must be
// called without e.mu.
func (e *Enclave) startSnapshot() {
	e.mu.Lock()
	j := e.snapDue
	e.snapDue = nil
	e.mu.Unlock()
	if j == nil {
		return
	}
	s := &e.snaps
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = j
	if !s.running {
		s.running = true
		go e.runSnapshots()
	}
}

func (e *Enclave) runSnapshots() {
	s := &e.snaps
	for {
		s.mu.Lock()
		j := s.next
		s.next = nil
		if j == nil {
			s.running = false
			if s.idle.L != nil {
				s.idle.Broadcast()
			}
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if err := e.writeSnapshot(j); err != nil {
			e.log.Error("state snapshot failed", "block", j.n, "err", err)
		}
	}
}

// waitSnapshots starts a due snapshot and waits until none is being taken.
func (e *Enclave) waitSnapshots() {
	e.startSnapshot()
	s := &e.snaps
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle.L == nil {
		s.idle.L = &s.mu
	}
	for s.running {
		s.idle.Wait()
	}
}

// writeSnapshot encodes, seals and stores j's state, then lists it in the
// index if the state it came from is still the enclave's.
func (e *Enclave) writeSnapshot(j *snapJob) error {
	if err := e.putSnapshot(j.n, j.stateHash, j.state); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if j.epoch != e.snapEpoch {
		e.log.Info("state snapshot not listed: the state was replaced meanwhile", "block", j.n)
		return nil
	}
	return e.indexSnapshotLocked(j.n)
}

// snapshotLocked takes block n's snapshot at once, under the lock (a join
// seals its starting point before it serves).
func (e *Enclave) snapshotLocked(n uint64) error {
	if err := e.putSnapshot(n, e.stateHash, e.state); err != nil {
		return err
	}
	return e.indexSnapshotLocked(n)
}

// putSnapshot seals and stores st, the state after block n whose hash is
// stateHash, under block n's snapshot key (not yet listed in the index).
func (e *Enclave) putSnapshot(n uint64, stateHash [32]byte, st *stf.State) error {
	return e.putSealed(numberKey(keySnapshotPrefix, n), "snapshot", snapshotBlob{Number: n, StateHash: stateHash, Snapshot: st.Snapshot()})
}

// indexSnapshotLocked lists snapshot n as the latest, forgetting those at
// or above it and those beyond KeepSnapshots.
func (e *Enclave) indexSnapshotLocked(n uint64) error {
	var idx snapshotIndex
	_ = e.getSealed(keySnapshotIndex, "snapshot-index", &idx)
	idx.Numbers = append(slices.DeleteFunc(idx.Numbers, func(x uint64) bool { return x >= n }), n)
	for len(idx.Numbers) > e.cfg.KeepSnapshots {
		_ = e.host.DeleteState(numberKey(keySnapshotPrefix, idx.Numbers[0]))
		idx.Numbers = idx.Numbers[1:]
	}
	return e.putSealed(keySnapshotIndex, "snapshot-index", idx)
}
