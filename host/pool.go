package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/transport"
)

// errEnclaveUnreachable is returned when no connection to the enclave can be
// made.
var errEnclaveUnreachable = errors.New("host: enclave unreachable")

// pool keeps a fixed number of persistent, multiplexed connections to the
// enclave and spreads calls over them. A connection that dies is redialled on
// the next call that lands on its slot.
type pool struct {
	tr        transport.Transport
	cid, port uint32
	log       *slog.Logger
	next      atomic.Uint64
	slots     []slot
}

type slot struct {
	mu sync.Mutex
	c  *proto.Client
}

func newPool(tr transport.Transport, cid, port uint32, n int, log *slog.Logger) *pool {
	if n <= 0 {
		n = 1
	}
	return &pool{tr: tr, cid: cid, port: port, log: log, slots: make([]slot, n)}
}

func (p *pool) client(ctx context.Context) (*proto.Client, error) {
	s := &p.slots[p.next.Add(1)%uint64(len(p.slots))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c != nil {
		select {
		case <-s.c.Done():
			s.c = nil
		default:
			return s.c, nil
		}
	}
	conn, err := p.tr.Dial(ctx, p.cid, p.port)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errEnclaveUnreachable, err)
	}
	s.c = proto.NewClient(conn, &proto.ClientOptions{Logger: p.log})
	return s.c, nil
}

// call sends req to the enclave. A remote refusal comes back as a
// *proto.Error.
func (p *pool) call(ctx context.Context, req proto.Message) (proto.Message, error) {
	c, err := p.client(ctx)
	if err != nil {
		return nil, err
	}
	return c.Call(ctx, req)
}

func (p *pool) close() {
	for i := range p.slots {
		s := &p.slots[i]
		s.mu.Lock()
		if s.c != nil {
			s.c.Close()
			s.c = nil
		}
		s.mu.Unlock()
	}
}
