package executor

import (
	"strings"
	"testing"
)

var maskSecrets = map[string]string{"pw": "hunter22", "tok": "s3cr3t-t0ken-value", "short": "xy"}

// feed writes s to a fresh masker in chunks cut at the given offsets.
func feed(r redactor, s string, cuts []int) string {
	m := &streamMasker{r: r}
	var out strings.Builder
	prev := 0
	for _, c := range cuts {
		if c <= prev || c >= len(s) {
			continue
		}
		out.WriteString(m.Write(s[prev:c]))
		prev = c
	}
	out.WriteString(m.Write(s[prev:]))
	out.WriteString(m.Flush())
	return out.String()
}

func TestStreamMaskerSplitValues(t *testing.T) {
	r := newRedactor(maskSecrets)
	in := "user=admin password=hunter22 token=s3cr3t-t0ken-value xy\n"
	want := r.mask(in)
	if strings.Contains(want, "hunter22") || strings.Contains(want, "s3cr3t") {
		t.Fatalf("mask: %q", want)
	}
	// Every single cut and every pair of cuts.
	for i := 0; i < len(in); i++ {
		for j := i; j < len(in); j++ {
			if got := feed(r, in, []int{i, j}); got != want {
				t.Fatalf("cut at %d,%d: %q, want %q", i, j, got, want)
			}
		}
	}
	// Byte by byte.
	cuts := make([]int, len(in))
	for i := range cuts {
		cuts[i] = i
	}
	if got := feed(r, in, cuts); got != want {
		t.Fatalf("byte by byte: %q", got)
	}
	// A chunk ending in the start of a secret is held back, nothing else.
	m := &streamMasker{r: r}
	if got := m.Write("line one\nsecret: hunt"); got != "line one\nsecret: " {
		t.Fatalf("held back: %q", got)
	}
	if got := m.Write("er22 done\n"); got != "*** done\n" {
		t.Fatalf("rest: %q", got)
	}
	if got := maskedTail(r.mask, "aaaa hunter22", 4); got != "… ***" {
		t.Fatalf("maskedTail: %q", got)
	}
}

func TestStepLogMasksValueSplitInALongLine(t *testing.T) {
	var chunks []string
	l := newStepLog(1<<20, newRedactor(maskSecrets), func(c string) { chunks = append(chunks, c) })
	// One line longer than a chunk, with the secret across the cut.
	line := strings.Repeat("x", chunkBytes-4) + "hunter22" + strings.Repeat("y", chunkBytes) + "\n"
	l.Write([]byte(line))
	l.Close()
	all := strings.Join(chunks, "")
	if strings.Contains(all, "hunter22") || strings.Contains(all, "hunt") || !strings.Contains(all, "x***y") {
		t.Fatalf("secret split by the chunk cut not masked (%d chunks)", len(chunks))
	}
}

// FuzzStreamMasker: however a stream is cut into chunks, the masked
// output is the same as masking it whole, and no secret value survives.
func FuzzStreamMasker(f *testing.F) {
	f.Add("password=hunter22\n", 9, 14)
	f.Add("hunter2hunter22 s3cr3t-t0ken-values3cr3t", 3, 30)
	f.Add("", 0, 0)
	f.Add("hhhunter22hunter22", 1, 2)
	r := newRedactor(maskSecrets)
	f.Fuzz(func(t *testing.T, s string, a, b int) {
		got := feed(r, s, []int{a, b})
		if want := r.mask(s); got != want {
			t.Fatalf("cut at %d,%d of %q: %q, want %q", a, b, s, got, want)
		}
		for _, v := range []string{"hunter22", "s3cr3t-t0ken-value"} {
			if strings.Contains(got, v) {
				t.Fatalf("%q survived in %q", v, got)
			}
		}
	})
}

// TestLineStamperMasksAroundTimes: with timestamps, Docker starts every
// message with its time, also the second half of a line it cut in two. A
// secret cut there is still masked, and each line starts with the time of
// its first message, once.
func TestLineStamperMasksAroundTimes(t *testing.T) {
	r := newRedactor(maskSecrets)
	const t1, t2, t2b, t3 = "2026-11-30T10:00:00.000000001Z", "2026-11-30T10:00:01.5Z", "2026-11-30T10:00:01.6Z", "2026-11-30T10:00:02Z"
	line2 := "password=hunter22 token=s3cr3t-t0ken-value end\n"
	want := t1 + " first\n" + t2 + " " + r.mask(line2) + t3 + " last\n"
	for i := 1; i < len(line2); i++ {
		l := newLineStamper(&streamMasker{r: r})
		var out strings.Builder
		for _, msg := range []string{t1 + " first\n", t2 + " " + line2[:i], t2b + " " + line2[i:], t3 + " last\n"} {
			out.WriteString(l.Write(msg))
		}
		out.WriteString(l.Flush())
		if out.String() != want {
			t.Fatalf("line cut at %d: %q, want %q", i, out.String(), want)
		}
	}
	// Several lines in one message all get its time; text without a time
	// passes unstamped.
	l := newLineStamper(&streamMasker{r: r})
	if got := l.Write(t1+" a\nb hunter22\n") + l.Write("no time\n") + l.Flush(); got != t1+" a\n"+t1+" b ***\nno time\n" {
		t.Fatalf("several lines: %q", got)
	}
}

// FuzzLineStamper: whatever a container prints and however Docker cuts it
// into stamped messages, the stamped output never shows a secret value or
// a piece of one where the same text unstamped is masked: with the times
// at the line starts taken off, it is exactly the masked text, and every
// line starts with the time of its first message.
func FuzzLineStamper(f *testing.F) {
	f.Add("password=hunter22 ok\nline two s3cr3t-t0ken-value\n", uint64(7), uint64(3))
	f.Add("hunter22hunter22\n\nxy hunt", uint64(1), uint64(1))
	f.Fuzz(func(t *testing.T, text string, cutA, cutB uint64) {
		if strings.ContainsAny(text, "\r") {
			return
		}
		r := newRedactor(maskSecrets)
		const stamp = "2026-11-30T10:00:00.5Z"
		// Cut the text into messages at two offsets.
		a, b := int(cutA%uint64(len(text)+1)), int(cutB%uint64(len(text)+1))
		if a > b {
			a, b = b, a
		}
		l := newLineStamper(&streamMasker{r: r})
		var out strings.Builder
		for _, part := range []string{text[:a], text[a:b], text[b:]} {
			if part != "" {
				out.WriteString(l.Write(stamp + " " + part))
			}
		}
		out.WriteString(l.Flush())
		lines := strings.SplitAfter(out.String(), "\n")
		var plain strings.Builder
		for _, line := range lines {
			if line == "" {
				continue
			}
			rest, ok := strings.CutPrefix(line, stamp+" ")
			if !ok {
				t.Fatalf("line without its time: %q in %q", line, out.String())
			}
			plain.WriteString(rest)
		}
		if want := r.mask(text); plain.String() != want {
			t.Fatalf("unstamped output %q, want the masked text %q", plain.String(), want)
		}
	})
}
