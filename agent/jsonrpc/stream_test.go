package jsonrpc

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStreamReader(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
		err  error
	}{
		{"two objects", `{"a":1} {"b":2}`, []string{`{"a":1}`, `{"b":2}`}, io.EOF},
		{"no separator", `{"a":1}[2]`, []string{`{"a":1}`, `[2]`}, io.EOF},
		{"brackets in strings", `{"a":"}]\"{"}`, []string{`{"a":"}]\"{"}`}, io.EOF},
		{"leading whitespace", " \r\n\t{}", []string{`{}`}, io.EOF},
		{"scalar", `{} "x"`, []string{`{}`}, ErrFraming},
		{"number", `1`, nil, ErrFraming},
		{"cut", `{"a":`, nil, ErrTrailing},
		{"empty", ``, nil, io.EOF},
		{"too large", "[" + strings.Repeat(" ", MaxBody) + "]", nil, ErrTooLarge},
		{"exactly the limit", "[" + strings.Repeat(" ", MaxBody-2) + "]", []string{"[" + strings.Repeat(" ", MaxBody-2) + "]"}, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr := NewStreamReader(strings.NewReader(tc.in))
			var got []string
			var err error
			for {
				var m []byte
				if m, err = sr.Next(); err != nil {
					break
				}
				got = append(got, string(m))
			}
			if !errors.Is(err, tc.err) || strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestServeStream(t *testing.T) {
	dispatch := func(_ context.Context, r Request) (any, *Error) { return r.Method, nil }
	t.Run("in order, notifications unanswered, bad message kept", func(t *testing.T) {
		srv, cli := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- ServeStream(context.Background(), srv, nil, dispatch, nil) }()
		go io.WriteString(cli, `{"jsonrpc":"2.0","method":"a","id":1}{"jsonrpc":"2.0","method":"n"}{"jsonrpc":"2.0","method":"b","id":2,}{"jsonrpc":"2.0","method":"c","id":3}`)
		br := bufio.NewReader(cli)
		for _, want := range []string{`"result":"a","id":1`, `"code":-32700`, `"result":"c","id":3`} {
			line, err := br.ReadString('\n')
			if err != nil || !strings.Contains(line, want) {
				t.Fatalf("answer %q, %v; want %s", line, err, want)
			}
		}
		cli.Close()
		if err := <-done; err != nil {
			t.Fatalf("ServeStream after the peer closed: %v", err)
		}
	})
	t.Run("idle timeout closes", func(t *testing.T) {
		srv, cli := net.Pipe()
		defer cli.Close()
		done := make(chan error, 1)
		go func() {
			done <- ServeStream(context.Background(), srv, nil, dispatch, &StreamOptions{IdleTimeout: time.Millisecond})
		}()
		if _, err := cli.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read after the idle timeout: %v", err)
		}
		if err := <-done; err == nil {
			t.Fatal("no error after an idle timeout")
		}
	})
	t.Run("cancel ends it", func(t *testing.T) {
		srv, cli := net.Pipe()
		defer cli.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ServeStream(ctx, srv, nil, dispatch, nil) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("after cancel: %v", err)
		}
	})
}

// deadlineConn tells when a read deadline in the past is set.
type deadlineConn struct {
	net.Conn
	past chan struct{}
	once sync.Once
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	if t.Before(time.Now()) {
		c.once.Do(func() { close(c.past) })
	}
	return c.Conn.SetReadDeadline(t)
}

// TestServeStreamEndedContext: when the server stops while a request is
// answered, the stream ends once the answer is written, not after the
// idle timeout: the loop's idle deadline does not replace the past
// deadline the context's end set.
func TestServeStreamEndedContext(t *testing.T) {
	srv, cli := net.Pipe()
	defer cli.Close()
	conn := &deadlineConn{Conn: srv, past: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	dispatch := func(_ context.Context, r Request) (any, *Error) {
		cancel()    // the server stops
		<-conn.past // and its context's end has set the past deadline
		return r.Method, nil
	}
	done := make(chan error, 1)
	go func() { done <- ServeStream(ctx, conn, nil, dispatch, &StreamOptions{IdleTimeout: time.Hour}) }()
	go func() {
		io.WriteString(cli, `{"jsonrpc":"2.0","method":"a","id":1}`)
		io.Copy(io.Discard, cli)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute): // the idle timeout is an hour: a minute is a hang
		t.Fatal("ServeStream waits for the idle timeout after its context ended")
	}
}
