package drain

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// receiveQueued reports whether bytes wait unread in nc's kernel receive
// queue (SIOCINQ).
func receiveQueued(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	if err := rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return false
	}
	return n > 0
}
