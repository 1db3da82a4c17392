package executor

import (
	"strings"
	"time"
)

// streamMasker masks secret values in a stream that arrives in arbitrary
// chunks: a value split across two chunks is still masked, because the end
// of a chunk that could be the start of a secret is held back until the
// next chunk (or Flush) shows how it continues. Not safe for concurrent
// use; use one per stream.
type streamMasker struct {
	r       redactor
	pending string
}

// Write returns the masked text that is safe to pass on now.
func (m *streamMasker) Write(data string) string {
	s := m.pending + data
	if len(m.r.pairs) == 0 {
		m.pending = ""
		return s
	}
	cut := len(s) - m.heldSuffix(s)
	// A whole secret that starts before the cut and ends after it stays
	// held too, so it is masked whole with what follows.
	for moved := true; moved && cut > 0; {
		moved = false
		for _, p := range m.r.pairs {
			v := p[0]
			from := max(0, cut-len(v)+1)
			if i := strings.Index(s[from:], v); i >= 0 && from+i < cut && from+i+len(v) > cut {
				cut, moved = from+i, true
			}
		}
	}
	m.pending = s[cut:]
	return m.r.mask(s[:cut])
}

// Flush returns what is held back, masked (the stream ended).
func (m *streamMasker) Flush() string {
	s := m.pending
	m.pending = ""
	return m.r.mask(s)
}

// heldSuffix is the length of the longest suffix of s that is a proper
// prefix of a secret value.
func (m *streamMasker) heldSuffix(s string) int {
	best := 0
	if s == "" {
		return 0
	}
	for _, p := range m.r.pairs {
		v := p[0]
		last := s[len(s)-1]
		for k := min(len(v)-1, len(s)); k > best; k-- {
			if v[k-1] == last && strings.HasSuffix(s, v[:k]) {
				best = k
				break
			}
		}
	}
	return best
}

// maskedTail masks s and then keeps its last n bytes, so a secret is
// never cut into a visible part by the shortening.
func maskedTail(mask func(string) string, s string, n int) string {
	if mask != nil {
		s = mask(s)
	}
	return tailString(s, n)
}

// lineStamper masks a log whose messages Docker starts with their time
// ("<RFC 3339> <text>") without letting a time split a secret in two: it
// takes the time off each message, masks the text as one stream, and
// writes each line's time again at the start of the masked line. A line
// cut into several messages (Docker does at 16 KiB) keeps the time of its
// first message.
type lineStamper struct {
	m        *streamMasker
	inStart  bool     // the text read so far ends a line
	outStart bool     // the text written so far ends a line
	stamps   []string // times of the lines begun in the input, not yet written
}

func newLineStamper(m *streamMasker) *lineStamper {
	return &lineStamper{m: m, inStart: true, outStart: true}
}

// Write takes one message and returns the masked, stamped text that is
// safe to pass on now.
func (l *lineStamper) Write(msg string) string {
	stamp, text, ok := strings.Cut(msg, " ")
	if _, err := time.Parse(time.RFC3339Nano, stamp); !ok || err != nil {
		stamp, text = "", msg
	}
	for rest := text; rest != ""; {
		if l.inStart {
			l.stamps = append(l.stamps, stamp)
		}
		i := strings.IndexByte(rest, '\n')
		if i < 0 {
			l.inStart = false
			break
		}
		l.inStart = true
		rest = rest[i+1:]
	}
	return l.stamp(l.m.Write(text))
}

// Flush returns what is held back (the stream ended).
func (l *lineStamper) Flush() string { return l.stamp(l.m.Flush()) }

// stamp writes the time of its line before each line start of out. (A
// secret value holding a line break shifts the later times by a line;
// it never shows a secret.)
func (l *lineStamper) stamp(out string) string {
	var b strings.Builder
	for out != "" {
		if l.outStart {
			if len(l.stamps) > 0 {
				if l.stamps[0] != "" {
					b.WriteString(l.stamps[0])
					b.WriteByte(' ')
				}
				l.stamps = l.stamps[1:]
			}
			l.outStart = false
		}
		i := strings.IndexByte(out, '\n')
		if i < 0 {
			b.WriteString(out)
			break
		}
		b.WriteString(out[:i+1])
		out = out[i+1:]
		l.outStart = true
	}
	return b.String()
}
