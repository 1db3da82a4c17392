package app

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// batchWriter collects access-log lines in a buffer and writes them in
// batches: when the buffer fills, every interval, and on Close. One write
// system call per batch instead of one per request is most of what an access
// log costs the proxy; a line reaches the output at most one interval late.
type batchWriter struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newBatchWriter(w io.Writer, size int, interval time.Duration) *batchWriter {
	b := &batchWriter{buf: bufio.NewWriterSize(w, size), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(interval)
	return b
}

func (b *batchWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *batchWriter) flushEvery(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.flush()
		case <-b.stop:
			b.flush()
			return
		}
	}
}

func (b *batchWriter) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.buf.Flush()
}

// Close writes what is buffered and stops the flusher.
func (b *batchWriter) Close() error {
	close(b.stop)
	<-b.done
	return nil
}
