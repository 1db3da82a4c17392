package testutil

import (
	"bytes"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DirWatch records the names that change in one directory (inotify, as
// Traefik's file provider watches its directory).
type DirWatch struct {
	fd int
}

// WatchDir starts recording changes in dir; the watch ends with the test.
func WatchDir(t testing.TB, dir string) *DirWatch {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_ALL_EVENTS); err != nil {
		t.Fatalf("watch %s: %v", dir, err)
	}
	return &DirWatch{fd: fd}
}

// Names returns the names of the entries that changed since the last call
// (one per event, in order).
func (w *DirWatch) Names(t testing.TB) []string {
	t.Helper()
	buf := make([]byte, 64<<10)
	var names []string
	for {
		n, err := unix.Read(w.fd, buf)
		if err == unix.EAGAIN {
			return names
		}
		if err != nil {
			t.Fatalf("read inotify events: %v", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			if name := string(bytes.TrimRight(raw, "\x00")); name != "" {
				names = append(names, name)
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}
