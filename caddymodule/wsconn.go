package caddymodule

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// A watcher's WebSocket connection is held as cheaply as a connection
// that mostly waits can be: after the handshake it keeps no buffer, no
// context and no timer of its own, and one goroutine reads what the client
// sends (pongs, its close) while the watcher's own goroutine writes.
// Frames are read with github.com/gobwas/ws and written whole, in one
// write each: a message, or a last message and the close frame together.
// A general WebSocket library's connection holds buffers, locks and
// contexts of its own, pings and closes by waiting on the caller's
// goroutine, and cannot write a message and the close frame at once: with
// it, an idle watcher held 18 KiB rather than 15 (docs/performance.md,
// W10).

// watcherReadLimit is the longest message a watcher may send before it is
// closed with 1009: a watcher has nothing to say, and a message within the
// limit is answered with 1008.
const watcherReadLimit = 32768

// closeWait is how long a close handshake the server began may take: the
// connection is closed then, answered or not.
const closeWait = 5 * time.Second

// Close codes a watcher is sent.
const (
	closeNormal          = 1000
	closeGoingAway       = 1001
	closeProtocolError   = 1002
	closePolicyViolation = 1008
	closeMessageTooBig   = 1009
)

// errWatcherGone is why a watcher's stream ends when its client closed or
// its connection broke.
var errWatcherGone = errors.New("the watcher went away")

// wsConn is a watcher's WebSocket connection, server side.
type wsConn struct {
	conn    net.Conn
	in      io.Reader // conn, after whatever the client sent with its handshake
	timeout time.Duration

	wmu       sync.Mutex
	closeSent bool // under wmu: no frame goes after a close

	pongs atomic.Uint64
	// failed is the error of a write that failed, which closed the
	// connection (and so ended the reader).
	failed atomic.Pointer[error]
	gone   chan struct{} // closed when the reader ends
	// onGone is called, once, when the reader ends.
	onGone func()
	// noPong drops the watcher for not answering a ping.
	noPong func()

	// The pinger's (keepalive.go), used by its goroutine only: when the
	// last ping went out, the one unanswered so far (zero when none) and
	// the count of pongs then.
	lastPing, pingAt time.Time
	pongsAt          uint64
}

// errWriteBusy is a ping's error when a message is being written.
var errWriteBusy = errors.New("a write is under way")

// acceptWatcher completes the WebSocket handshake of r, which
// checkHandshake has passed, and returns the connection; on error the
// client has been answered (400 or 426) and the connection closed.
// Writes that take longer than timeout fail.
func acceptWatcher(w http.ResponseWriter, r *http.Request, timeout time.Duration) (*wsConn, error) {
	conn, brw, _, err := ws.HTTPUpgrader{}.Upgrade(r, rootHijacker{w})
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, err
	}
	c := &wsConn{conn: conn, in: conn, timeout: timeout, gone: make(chan struct{})}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		c.in = io.MultiReader(bytes.NewReader(bytes.Clone(b)), conn)
	}
	return c, nil
}

// rootHijacker hijacks the connection from the server's own response,
// beneath Caddy's wrappers: their recorders hijack to a connection that
// counts the bytes into the request's record, which the server reads when
// the request returns, while the watcher, which outlives it, goes on
// writing; and they keep the request's state alive for as long as the
// connection is.
type rootHijacker struct{ http.ResponseWriter }

func (h rootHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := rootWriter(h.ResponseWriter).(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	return hj.Hijack()
}

// rootWriter is the server's own response beneath rw's wrappers.
func rootWriter(rw http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := rw.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return rw
		}
		rw = u.Unwrap()
	}
}

// appendFrame appends a whole, unmasked server frame of op and payload.
func appendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	dst = append(dst, 0x80|byte(op))
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// textFrame is msg as a whole text frame.
func textFrame(msg []byte) []byte {
	return appendFrame(make([]byte, 0, len(msg)+10), ws.OpText, msg)
}

// appendClose appends a close frame of code and reason (cut to what a
// control frame holds).
func appendClose(dst []byte, code int, reason string) []byte {
	var p [125]byte
	binary.BigEndian.PutUint16(p[:], uint16(code))
	n := 2 + copy(p[2:], reason)
	return appendFrame(dst, ws.OpClose, p[:n])
}

// write writes frames, whole, within the write timeout. Nothing is
// written after a close frame.
func (c *wsConn) write(frames []byte, closing bool) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	c.closeSent = closing
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.conn.Write(frames)
	if err != nil {
		c.failed.Store(&err)
		c.conn.Close()
	}
	return err
}

// goneWhy is why the connection ended: a write's error, if one failed,
// else the client going away.
func (c *wsConn) goneWhy() error {
	if err := c.failed.Load(); err != nil {
		return *err
	}
	return errWatcherGone
}

// send writes one message frame.
func (c *wsConn) send(frame []byte) error { return c.write(frame, false) }

// pingFrame is a ping, with no payload.
var pingFrame = appendFrame(nil, ws.OpPing, nil)

// ping sends a ping, unless a message is being written (errWriteBusy),
// and returns the count of pongs so far, which grows when the client
// answers. The ping waits pingWriteWait at most for room in the
// connection; past it, the connection is closed.
func (c *wsConn) ping() (uint64, error) {
	if !c.wmu.TryLock() {
		return 0, errWriteBusy
	}
	defer c.wmu.Unlock()
	if c.closeSent {
		return 0, net.ErrClosed
	}
	n := c.pongs.Load()
	c.conn.SetWriteDeadline(time.Now().Add(pingWriteWait))
	if _, err := c.conn.Write(pingFrame); err != nil {
		c.conn.Close()
		return n, err
	}
	return n, nil
}

// answered reports whether a pong came since ping returned n.
func (c *wsConn) answered(n uint64) bool { return c.pongs.Load() != n }

// close ends the stream: the last message (if any) and a close frame of
// code and reason go out together, and the client has closeWait to answer
// before the connection closes. It does not wait.
func (c *wsConn) close(last []byte, code int, reason string) {
	// last may be a shared frame: the two go into a buffer of their own.
	frames := appendClose(append(make([]byte, 0, len(last)+4+len(reason)), last...), code, reason)
	if c.write(frames, true) == nil {
		c.conn.SetReadDeadline(time.Now().Add(closeWait))
	}
}

// abort closes the connection at once, unless a close handshake is under
// way, which ends by itself.
func (c *wsConn) abort() {
	c.wmu.Lock()
	sent := c.closeSent
	c.wmu.Unlock()
	if !sent {
		c.conn.Close()
	}
}

// readClient reads what the client sends until the connection ends: it
// answers pings, counts pongs, answers the client's close, and closes a
// watcher that sends a message (1008: a watcher has nothing to say; 1009
// past watcherReadLimit) or breaks the protocol (1002). The connection is
// closed when it returns.
func (c *wsConn) readClient() {
	defer func() {
		c.conn.Close()
		close(c.gone)
		if c.onGone != nil {
			c.onGone()
		}
	}()
	in := &clientReader{r: c.in}
	var msg int64    // bytes of the current message so far
	refused := false // the client was sent 1008 or 1009; its messages are skipped
	for {
		h, err := ws.ReadHeaderBuffer(in, in.hdr[:])
		if err != nil {
			return
		}
		if !h.Masked || h.Rsv != 0 || h.OpCode.IsReserved() || (h.OpCode.IsControl() && (!h.Fin || h.Length > 125)) {
			c.close(nil, closeProtocolError, "protocol error")
			c.drain()
			return
		}
		if h.OpCode.IsData() {
			if msg += h.Length; msg > watcherReadLimit && !refused {
				refused = true
				c.close(nil, closeMessageTooBig, "read limited at "+strconv.Itoa(watcherReadLimit+1)+" bytes")
			}
			if _, err := io.CopyN(io.Discard, in, h.Length); err != nil {
				return
			}
			if h.Fin {
				msg = 0
				if !refused {
					refused = true
					c.close(nil, closePolicyViolation, "a watcher sends no messages")
				}
			}
			continue
		}
		p := in.ctl[:h.Length]
		if _, err := io.ReadFull(in, p); err != nil {
			return
		}
		ws.Cipher(p, h.Mask, 0)
		switch h.OpCode {
		case ws.OpPing:
			c.write(appendFrame(nil, ws.OpPong, p), false)
		case ws.OpPong:
			c.pongs.Add(1)
		case ws.OpClose:
			// The client's close, or its answer to the server's: the
			// first is answered with its code.
			code := closeNormal
			if len(p) >= 2 {
				code = int(binary.BigEndian.Uint16(p))
			}
			c.write(appendClose(nil, code, ""), true)
			return
		}
	}
}

// clientReader reads a client's frames from its connection in as few
// reads as the client sent them: a control frame (a pong, a close) is
// one read rather than one for each part of its header and its payload.
type clientReader struct {
	r    io.Reader
	hdr  [ws.MaxHeaderSize - 2]byte // a frame header
	ctl  [125]byte                  // a control frame's payload
	buf  [144]byte                  // read ahead
	i, n int                        // buf[i:n] is read ahead, not yet taken
}

func (cr *clientReader) Read(p []byte) (int, error) {
	if cr.i == cr.n {
		if len(p) >= len(cr.buf) {
			return cr.r.Read(p)
		}
		n, err := cr.r.Read(cr.buf[:])
		cr.i, cr.n = 0, n
		if n == 0 {
			return 0, err
		}
	}
	n := copy(p, cr.buf[cr.i:cr.n])
	cr.i += n
	return n, nil
}

// drain reads until the client answers the server's close, or closeWait
// passes.
func (c *wsConn) drain() {
	buf := make([]byte, 512)
	for {
		if _, err := c.in.Read(buf); err != nil {
			return
		}
	}
}
