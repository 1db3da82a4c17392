package executor

import (
	"bytes"
	"strconv"
	"sync"
	"time"
)

// stepLog turns a byte stream (plugin stderr) into StepLog chunks: complete
// lines are flushed at least every flushEvery or when chunkBytes are
// buffered; secret values are masked; after capBytes the rest is dropped
// with one note. It also keeps the tail for error messages.
type stepLog struct {
	mu        sync.Mutex
	emit      func(chunk string)
	mask      *streamMasker
	buf       []byte
	sent      int
	capBytes  int
	truncated bool
	tail      []byte
	stop      chan struct{}
	done      chan struct{}
}

const (
	chunkBytes = 4 << 10
	tailBytes  = 2 << 10
	flushEvery = 300 * time.Millisecond
)

func newStepLog(capBytes int, red redactor, emit func(string)) *stepLog {
	l := &stepLog{emit: emit, mask: &streamMasker{r: red}, capBytes: capBytes, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		t := time.NewTicker(flushEvery)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.mu.Lock()
				l.flush(false)
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func (l *stepLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if len(l.buf) >= chunkBytes {
		l.flush(false)
	}
	return len(p), nil
}

// flush sends complete lines (everything when all is set, or when one line
// is longer than a chunk).
func (l *stepLog) flush(all bool) {
	n := len(l.buf)
	if !all {
		if i := bytes.LastIndexByte(l.buf, '\n'); i >= 0 {
			n = i + 1
		} else if len(l.buf) < chunkBytes {
			n = 0
		}
	}
	if n == 0 && !all {
		return
	}
	// A long line is cut at chunkBytes: the masker holds back a secret
	// value split by the cut until the rest arrives.
	chunk := l.mask.Write(string(l.buf[:n]))
	if all {
		chunk += l.mask.Flush()
	}
	l.buf = append(l.buf[:0], l.buf[n:]...)
	if chunk == "" {
		return
	}
	l.tail = append(l.tail, chunk...)
	if len(l.tail) > tailBytes {
		l.tail = append([]byte(nil), l.tail[len(l.tail)-tailBytes:]...)
	}
	if l.truncated {
		return
	}
	if l.sent+len(chunk) > l.capBytes {
		room := l.capBytes - l.sent
		if room > 0 {
			l.emit(chunk[:room])
		}
		l.emit("\n[log truncated: more than " + byteSize(l.capBytes) + " of output]\n")
		l.truncated = true
		return
	}
	l.sent += len(chunk)
	l.emit(chunk)
}

// Close flushes what is left and stops the ticker.
func (l *stepLog) Close() {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flush(true)
}

// Tail is the last ~2 KiB of (masked) output.
func (l *stepLog) Tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(bytes.TrimSpace(l.tail))
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return strconv.Itoa(n) + " bytes"
}
