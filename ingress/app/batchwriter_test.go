package app

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *countingWriter) snapshot() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.writes
}

func TestBatchWriterBatchesAndFlushesOnClose(t *testing.T) {
	out := &countingWriter{}
	// An interval far beyond the test: only a full buffer or Close writes.
	b := newBatchWriter(out, 4096, time.Hour)
	line := strings.Repeat("x", 99) + "\n"
	for i := 0; i < 1000; i++ {
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got, writes := out.snapshot()
	if got != strings.Repeat(line, 1000) {
		t.Fatalf("output differs from input: %d bytes, want %d", len(got), 1000*len(line))
	}
	// 100,000 bytes through a 4 KiB buffer: about 25 writes, not 1,000.
	if writes > 30 {
		t.Errorf("%d writes for 1,000 lines; want batches", writes)
	}
}

func TestBatchWriterFlushesOnInterval(t *testing.T) {
	out := &countingWriter{}
	b := newBatchWriter(out, 64<<10, 10*time.Millisecond)
	defer b.Close()
	if _, err := b.Write([]byte("one line\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, _ := out.snapshot(); got == "one line\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a buffered line was never written by the interval flush")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
