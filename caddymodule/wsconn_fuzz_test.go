package caddymodule

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// clientFrame is a masked client frame (a zero mask: the payload as it is).
func clientFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	b := byte(op)
	if fin {
		b |= 0x80
	}
	out := []byte{b}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	out = append(out, 0, 0, 0, 0)
	return append(out, payload...)
}

// Whatever a client sends, the reader of a watcher's connection ends
// (here, at the end of the input) without a panic, closes the connection,
// and the server's side of it is whole frames, unmasked, with at most one
// close frame, and nothing after it.
func FuzzWatcherClientFrames(f *testing.F) {
	f.Add(clientFrame(ws.OpPing, true, []byte("hi")))
	f.Add(clientFrame(ws.OpPong, true, nil))
	f.Add(clientFrame(ws.OpClose, true, []byte{0x03, 0xe8}))
	f.Add(clientFrame(ws.OpText, true, []byte("hello")))
	f.Add(clientFrame(ws.OpText, false, make([]byte, 20000)))
	f.Add(append(clientFrame(ws.OpText, false, make([]byte, 20000)), clientFrame(ws.OpContinuation, true, make([]byte, 20000))...))
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}) // unmasked
	f.Add([]byte{0x89, 0xff, 0, 0, 0, 0, 0, 0, 0, 1})  // a long ping
	f.Add([]byte{0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		server, client := net.Pipe()
		c := &wsConn{conn: server, in: io.MultiReader(bytes.NewReader(in)), timeout: time.Second, gone: make(chan struct{})}
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(client)
			got <- b
		}()
		done := make(chan struct{})
		go func() {
			c.readClient()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the reader did not end at the end of its input")
		}
		out := <-got
		closes := 0
		r := bytes.NewReader(out)
		for r.Len() > 0 {
			if closes > 0 {
				t.Fatalf("frames after the close: % x", out)
			}
			h, err := ws.ReadHeader(r)
			if err != nil || h.Masked || !h.Fin || h.Length > int64(r.Len()) {
				t.Fatalf("server frames % x: header %+v, %v", out, h, err)
			}
			r.Seek(h.Length, io.SeekCurrent)
			if h.OpCode == ws.OpClose {
				closes++
			}
		}
	})
}
