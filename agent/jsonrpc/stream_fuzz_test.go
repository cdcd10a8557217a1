package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// FuzzStreamReader splits arbitrary bytes as the stream server does: every
// message starts with '{' or '[', is at most MaxBody bytes and ends where
// its brackets balance; the reader stops at the first framing error and
// never panics; every message is answered with valid JSON.
func FuzzStreamReader(f *testing.F) {
	echo := func(_ context.Context, r Request) (any, *Error) { return r.Method, nil }
	f.Fuzz(func(t *testing.T, data []byte) {
		sr := NewStreamReader(bytes.NewReader(data))
		for i := 0; ; i++ {
			msg, err := sr.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, ErrFraming) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrTrailing) {
					t.Fatalf("message %d: unexpected error %v", i, err)
				}
				return
			}
			if len(msg) == 0 || len(msg) > MaxBody || (msg[0] != '{' && msg[0] != '[') {
				t.Fatalf("message %d: %q", i, msg)
			}
			last := msg[len(msg)-1]
			if last != '}' && last != ']' {
				t.Fatalf("message %d ends with %q", i, last)
			}
			if out := Answer(context.Background(), msg, echo); out != nil && !json.Valid(out) {
				t.Fatalf("message %d: answer %q is not JSON", i, out)
			}
		}
	})
}
