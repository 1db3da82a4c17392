package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Handover: a new nullops-ingress started with the same state dir takes
// over the listening sockets of the running one, which then drains and
// exits. The protocol, on the Unix socket statedir/handover.sock that the
// running ingress serves:
//
//  1. The successor connects; the running ingress sends the names of its
//     listeners and, with them, duplicates of their descriptors
//     (SCM_RIGHTS). It keeps accepting.
//  2. The successor serves on them (or, when it is configured with other
//     addresses, on its own new listeners), then writes one byte, "R"
//     (ready).
//  3. On "R" the running ingress gives up the handover socket and answers
//     "D" (draining); then it stops accepting and drains (package
//     ingress/drain): every request that reached it is answered. If the
//     successor goes away before "R" (it failed to start), nothing
//     happened: the running ingress keeps serving and waits for the next
//     successor.
//  4. After "D" the successor serves the handover socket itself.
//
// Both processes hold the very same sockets, so there is one accept queue
// throughout: a connection the old process no longer accepts waits there
// for the new one, never refused or reset. A listening socket is never
// closed while connections wait in its queue: the old process only closes
// its own descriptor, after the successor has said it serves the socket.

// HandoverSocket is the name of the Unix socket in the state dir.
const HandoverSocket = "handover.sock"

const (
	handoverReady    = 'R'
	handoverDraining = 'D'
)

type handoverMsg struct {
	Names []string `json:"names"` // of the listeners whose descriptors follow, in order
}

// predecessor is the running ingress whose sockets this one took over.
type predecessor struct{ c *net.UnixConn }

// ready tells the predecessor that this process serves (step 2) and waits
// for it to confirm it drains (step 3).
func (p *predecessor) ready() error {
	defer p.c.Close()
	_ = p.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := p.c.Write([]byte{handoverReady}); err != nil {
		return fmt.Errorf("handover: tell the running ingress this one is ready: %w", err)
	}
	b := make([]byte, 1)
	if _, err := p.c.Read(b); err != nil || b[0] != handoverDraining {
		return fmt.Errorf("handover: the running ingress did not confirm it drains (%v)", err)
	}
	return nil
}

// abandon tells the predecessor this process will not serve: it keeps
// serving itself.
func (p *predecessor) abandon() { p.c.Close() }

// inherit asks a running predecessor for its listeners (step 1); pred is
// nil when there is none.
func inherit(stateDir string) (ls map[string]net.Listener, pred *predecessor, err error) {
	c, err := net.DialTimeout("unix", filepath.Join(stateDir, HandoverSocket), 2*time.Second)
	if err != nil {
		return nil, nil, nil // no predecessor (or a stale socket of a dead one)
	}
	uc := c.(*net.UnixConn)
	fail := func(err error) (map[string]net.Listener, *predecessor, error) {
		uc.Close()
		for _, l := range ls {
			l.Close()
		}
		return nil, nil, err
	}
	_ = uc.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(3*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return fail(fmt.Errorf("handover: read from the running ingress: %w", err))
	}
	var msg handoverMsg
	if err := json.Unmarshal(buf[:n], &msg); err != nil {
		return fail(fmt.Errorf("handover: %w", err))
	}
	cmsgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(cmsgs) != 1 {
		return fail(fmt.Errorf("handover: no descriptors received (%v)", err))
	}
	fds, err := syscall.ParseUnixRights(&cmsgs[0])
	if err != nil || len(fds) != len(msg.Names) {
		for _, fd := range fds {
			_ = syscall.Close(fd)
		}
		return fail(fmt.Errorf("handover: %d descriptors for %d listeners (%v)", len(fds), len(msg.Names), err))
	}
	ls = map[string]net.Listener{}
	for i, fd := range fds {
		// The descriptor is non-blocking (it is the predecessor's socket),
		// so os.NewFile and FileListener leave it so: the predecessor, which
		// shares the open file, keeps accepting without blocking a thread.
		f := os.NewFile(uintptr(fd), msg.Names[i])
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			for _, fd := range fds[i+1:] {
				_ = syscall.Close(fd)
			}
			return fail(fmt.Errorf("handover: listener %s: %w", msg.Names[i], err))
		}
		ls[msg.Names[i]] = l
	}
	return ls, &predecessor{c: uc}, nil
}

// offerHandover serves the handover socket: it hands the listeners to each
// successor that connects until one says it is ready (then handedOver is
// closed and the caller drains). The returned stop closes the socket.
func offerHandover(stateDir string, listeners map[string]net.Listener, handedOver chan<- struct{}) (stop func(), err error) {
	path := filepath.Join(stateDir, HandoverSocket)
	_ = os.Remove(path) // stale, of a process that is gone, or of the predecessor, which has handed over
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("handover socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ul.Close()
		return nil, fmt.Errorf("handover socket: %w", err)
	}
	var mu sync.Mutex // orders giving the socket file to the successor and stop
	go func() {
		for {
			c, err := ul.AcceptUnix()
			if err != nil {
				return
			}
			if err := sendListeners(c, listeners); err != nil {
				c.Close()
				continue
			}
			// No deadline: the successor answers once it serves, or its
			// connection closes when it fails; meanwhile this process
			// keeps serving and no other successor can start.
			b := make([]byte, 1)
			if _, err := c.Read(b); err != nil || b[0] != handoverReady {
				c.Close()
				continue
			}
			// The successor owns the socket file from now on.
			mu.Lock()
			ul.SetUnlinkOnClose(false)
			ul.Close()
			mu.Unlock()
			_, _ = c.Write([]byte{handoverDraining})
			c.Close()
			close(handedOver)
			return
		}
	}()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		ul.Close()
	}, nil
}

func sendListeners(c *net.UnixConn, listeners map[string]net.Listener) error {
	var msg handoverMsg
	var fds []int
	defer func() {
		for _, fd := range fds {
			_ = syscall.Close(fd)
		}
	}()
	for _, name := range []string{"http", "tls", "metrics"} {
		l, ok := listeners[name].(*net.TCPListener)
		if !ok || l == nil {
			continue
		}
		// A plain dup of the descriptor: (*TCPListener).File would do too,
		// but a dup is all that is needed and leaves the socket as it is.
		rc, err := l.SyscallConn()
		if err != nil {
			return err
		}
		dup, derr := -1, error(nil)
		if err := rc.Control(func(fd uintptr) { dup, derr = syscall.Dup(int(fd)) }); err != nil {
			return err
		}
		if derr != nil {
			return derr
		}
		syscall.CloseOnExec(dup)
		msg.Names = append(msg.Names, name)
		fds = append(fds, dup)
	}
	if len(fds) == 0 {
		return errors.New("no listener to hand over")
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	_, _, err = c.WriteMsgUnix(b, syscall.UnixRights(fds...), nil)
	return err
}
