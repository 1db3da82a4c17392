package journal

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nullops/nullops/protocol"
)

func open(t *testing.T, dir string) *Journal {
	t.Helper()
	j, err := Open(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func logEvent(i int) protocol.StepLog {
	return protocol.StepLog{DeploymentID: 1, Step: "s", Chunk: string(rune('a' + i%26)), At: time.Now().UTC()}
}

func seqs(t *testing.T, j *Journal, after uint64) []uint64 {
	t.Helper()
	evs, err := j.Pending(after, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, e := range evs {
		out = append(out, e.Seq)
	}
	return out
}

func TestSeqsIncreaseAcrossRestartsAndUnackedEventsSurvive(t *testing.T) {
	dir := t.TempDir()
	j := open(t, dir)
	id := j.InstanceID()
	if len(id) != 32 {
		t.Fatalf("instance id %q", id)
	}
	for i := 1; i <= 3; i++ {
		seq, err := j.Emit(logEvent(i))
		if err != nil || seq != uint64(i) {
			t.Fatalf("emit %d: seq %d, %v", i, seq, err)
		}
	}
	if err := j.Ack(2); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = open(t, dir)
	defer j.Close()
	if j.InstanceID() != id {
		t.Fatalf("instance id changed across restart: %s → %s", id, j.InstanceID())
	}
	if j.LastAcked() != 2 || j.LastSeq() != 3 {
		t.Fatalf("after restart: acked %d, last %d; want 2, 3", j.LastAcked(), j.LastSeq())
	}
	if got := seqs(t, j, j.LastAcked()); len(got) != 1 || got[0] != 3 {
		t.Fatalf("unacked after restart: %v, want [3]", got)
	}
	seq, err := j.Emit(protocol.DeploymentStatus{DeploymentID: 1, Status: protocol.StatusRunning})
	if err != nil || seq != 4 {
		t.Fatalf("emit after restart: seq %d, %v; want 4", seq, err)
	}
	evs, _ := j.Pending(2, 10)
	if len(evs) != 2 || evs[1].Type != protocol.TypeDeploymentStatus || evs[1].Seq != 4 {
		t.Fatalf("pending: %+v", evs)
	}
	if err := protocol.ValidateEvent(evs[1]); err != nil {
		t.Fatalf("journaled event does not satisfy the contract: %v", err)
	}
}

func TestAcksNeverMoveBackwardsNorBeyondTheLastSeq(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	for i := 0; i < 5; i++ {
		if _, err := j.Emit(logEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []uint64{3, 1, 0} {
		if err := j.Ack(a); err != nil {
			t.Fatal(err)
		}
	}
	if j.LastAcked() != 3 {
		t.Fatalf("acked %d after acks 3,1,0; want 3", j.LastAcked())
	}
	if got := seqs(t, j, 0); len(got) != 2 || got[0] != 4 {
		t.Fatalf("outbox after ack 3: %v, want [4 5]", got)
	}
	if err := j.Ack(99); err != nil {
		t.Fatal(err)
	}
	if j.LastAcked() != 5 || len(seqs(t, j, 0)) != 0 {
		t.Fatalf("ack beyond the last seq: acked %d, outbox %v", j.LastAcked(), seqs(t, j, 0))
	}
}

func TestEmitRefusesWhatTheControlPlaneWouldReject(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	if _, err := j.EmitRaw(protocol.TypeMetrics, protocol.Metrics{}); !errors.Is(err, ErrNotEvent) {
		t.Fatalf("non-event type: %v", err)
	}
	if _, err := j.Emit(protocol.DeploymentStatus{DeploymentID: 1, Status: "bogus"}); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("invalid body: %v", err)
	}
	if _, err := j.EmitRaw(protocol.TypeStepLog, func() {}); err == nil {
		t.Fatal("unencodable body accepted")
	}
	if j.LastSeq() != 0 {
		t.Fatalf("refused events consumed seqs: last %d", j.LastSeq())
	}
}

func TestEachDataDirHasItsOwnInstance(t *testing.T) {
	a, b := open(t, t.TempDir()), open(t, t.TempDir())
	defer a.Close()
	defer b.Close()
	if a.InstanceID() == b.InstanceID() {
		t.Fatal("two data dirs share an instance id")
	}
}

func TestConcurrentEmitsGetUniqueContiguousSeqs(t *testing.T) {
	j := open(t, t.TempDir())
	defer j.Close()
	changed := j.Changed()
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint64]bool{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				seq, err := j.Emit(logEvent(i))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[seq] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for s := uint64(1); s <= 200; s++ {
		if !got[s] {
			t.Fatalf("seq %d missing among %d", s, len(got))
		}
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed was not signalled by Emit")
	}
	if n := len(seqs(t, j, 0)); n != 200 {
		t.Fatalf("outbox holds %d events, want 200", n)
	}
}
