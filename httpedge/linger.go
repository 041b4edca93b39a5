package httpedge

import (
	"io"
	"net"
	"time"
)

// Lingering close bounds: how much of an unread request body is drained, and for how long,
// before a connection is closed.
const (
	lingerBytes   = 4 << 20
	lingerTimeout = 2 * time.Second
)

// Lingering wraps ln so that closing a connection first shuts down its sending side and
// drains what the client still sends (up to lingerBytes, for at most lingerTimeout), as
// nginx's lingering close does. Without it, closing after a 413 while the client is still
// writing its over-limit body makes the kernel answer with a reset, and a client that writes
// its whole body before reading (Python's urllib) sees "connection reset" instead of the 413.
func Lingering(ln net.Listener) net.Listener { return lingeringListener{ln} }

type lingeringListener struct{ net.Listener }

func (l lingeringListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return &lingeringConn{TCPConn: tc}, nil
	}
	return c, nil
}

type lingeringConn struct{ *net.TCPConn }

func (c *lingeringConn) Close() error {
	if err := c.CloseWrite(); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.CopyN(io.Discard, c.TCPConn, lingerBytes)
	}
	return c.TCPConn.Close()
}
