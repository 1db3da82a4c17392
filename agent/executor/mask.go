package executor

import "strings"

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
