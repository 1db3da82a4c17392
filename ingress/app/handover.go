package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Handover: a new nullops-ingress started with the same state dir takes
// over the listening sockets of the running one, which then drains and
// exits. The running ingress serves a Unix socket in its state dir; the new
// one connects, receives the listeners' file descriptors (SCM_RIGHTS) and
// serves on them. Both processes hold the very same sockets, with one accept
// queue, so no connection is refused or reset in between: the old process
// only stops accepting (its in-flight requests finish), the new one goes on.

// HandoverSocket is the name of the Unix socket in the state dir.
const HandoverSocket = "handover.sock"

type handoverMsg struct {
	Names []string `json:"names"` // of the listeners whose descriptors follow, in order
}

// inherit asks a running predecessor for its listeners; ok is false when
// there is none.
func inherit(stateDir string) (ls map[string]net.Listener, ok bool, err error) {
	c, err := net.DialTimeout("unix", filepath.Join(stateDir, HandoverSocket), 2*time.Second)
	if err != nil {
		return nil, false, nil // no predecessor (or a stale socket of a dead one)
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	_ = uc.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(3*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, false, fmt.Errorf("handover: read from the running ingress: %w", err)
	}
	var msg handoverMsg
	if err := json.Unmarshal(buf[:n], &msg); err != nil {
		return nil, false, fmt.Errorf("handover: %w", err)
	}
	cmsgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(cmsgs) != 1 {
		return nil, false, fmt.Errorf("handover: no descriptors received (%v)", err)
	}
	fds, err := syscall.ParseUnixRights(&cmsgs[0])
	if err != nil || len(fds) != len(msg.Names) {
		return nil, false, fmt.Errorf("handover: %d descriptors for %d listeners (%v)", len(fds), len(msg.Names), err)
	}
	ls = map[string]net.Listener{}
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), msg.Names[i])
		l, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return nil, false, fmt.Errorf("handover: listener %s: %w", msg.Names[i], err)
		}
		ls[msg.Names[i]] = l
	}
	return ls, true, nil
}

// offerHandover serves the handover socket: the first successor to connect
// gets the listeners, then handedOver is closed (the caller shuts down).
// The returned stop closes the socket.
func offerHandover(stateDir string, listeners map[string]net.Listener, handedOver chan<- struct{}) (stop func(), err error) {
	path := filepath.Join(stateDir, HandoverSocket)
	_ = os.Remove(path) // stale, of a process that is gone (a live one handed over already)
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("handover socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ul.Close()
		return nil, fmt.Errorf("handover socket: %w", err)
	}
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
			// The successor owns the socket file from now on.
			ul.SetUnlinkOnClose(false)
			ul.Close()
			c.Close()
			close(handedOver)
			return
		}
	}()
	return func() { ul.Close() }, nil
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
		// A plain dup of the descriptor: unlike (*TCPListener).File and
		// (*os.File).Fd it leaves the socket non-blocking, which this
		// process still needs while it drains.
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
