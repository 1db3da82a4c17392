package activity

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

type sender struct {
	mu    sync.Mutex
	fail  bool
	got   [][]Item
	calls int
}

func (s *sender) SendActivity(_ context.Context, items []Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail {
		return errors.New("server down")
	}
	s.got = append(s.got, items)
	return nil
}

func TestTrackerReportsOnceAndRetries(t *testing.T) {
	tr := NewTracker()
	now := time.Unix(1700000000, 0)
	tr.Cell(1).Touch(now)
	tr.Cell(1).Touch(now.Add(-time.Minute)) // older: ignored
	tr.Cell(2).Touch(now.Add(time.Second))
	s := &sender{fail: true}
	flush(context.Background(), tr, s, zerolog.Nop())
	if len(tr.Pending()) != 2 {
		t.Fatal("a failed report must stay pending")
	}
	s.fail = false
	flush(context.Background(), tr, s, zerolog.Nop())
	if len(s.got) != 1 || len(s.got[0]) != 2 {
		t.Fatalf("reported %+v", s.got)
	}
	for _, it := range s.got[0] {
		if (it.ID == 1 && !it.LastRequestAt.Equal(now)) || (it.ID == 2 && !it.LastRequestAt.Equal(now.Add(time.Second))) {
			t.Errorf("item %+v", it)
		}
	}
	flush(context.Background(), tr, s, zerolog.Nop())
	if s.calls != 2 {
		t.Fatalf("nothing new, yet %d calls", s.calls)
	}
	// Deployment 2 leaves the table: its cell goes once reported.
	tr.Retain(map[int64]bool{1: true})
	if _, ok := tr.cells[2]; ok {
		t.Fatal("cell of a removed, fully reported deployment kept")
	}
	tr.Cell(1).Touch(now.Add(2 * time.Second))
	tr.Retain(map[int64]bool{})
	if _, ok := tr.cells[1]; !ok {
		t.Fatal("cell with unreported activity dropped")
	}
}
