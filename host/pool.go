package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nitrosign/nitrosign/proto"
	"github.com/nitrosign/nitrosign/transport"
)

// errEnclaveUnreachable is returned when no connection to the enclave can be
// made.
var errEnclaveUnreachable = errors.New("host: enclave unreachable")

// pool keeps a fixed number of persistent, multiplexed connections to the
// enclave and spreads calls over them. A connection that dies is redialled on
// the next call that lands on its slot. So is one left unused for maxIdle:
// the enclave closes a connection idle for its own idle timeout
// (docs/operations.md), and a request written just as it does so would fail
// with nothing known of whether the enclave read it; redialling well before
// that timeout keeps requests off connections the enclave may be closing.
type pool struct {
	tr        transport.Transport
	cid, port uint32
	log       *slog.Logger
	next      atomic.Uint64
	slots     []slot
	maxIdle   time.Duration

	// onConnect, when set, is called (without blocking) after each new
	// connection but those that replace one left idle: a new connection
	// after failed ones is how the host learns first that a restarted
	// enclave listens, and the unsealer then unseals it at once rather than
	// at its next poll.
	onConnect func()

	retiredMu sync.Mutex
	retired   map[*proto.Client]struct{} // redialled for idleness, closed after retireGrace or by close
}

type slot struct {
	mu   sync.Mutex
	c    *proto.Client
	used time.Time // when a call last took c
}

// poolMaxIdle is pool.maxIdle: well below the enclave's idle timeout (5
// minutes), and far above the pause between the audit store's polls, so
// that a running host never redials for idleness while it polls.
const poolMaxIdle = time.Minute

// retireGrace is how long a connection redialled for idleness stays open
// for the calls still running on it: longer than any call the host makes
// (an unseal call may take 3 minutes).
const retireGrace = 5 * time.Minute

func newPool(tr transport.Transport, cid, port uint32, n int, log *slog.Logger) *pool {
	if n <= 0 {
		n = 1
	}
	return &pool{tr: tr, cid: cid, port: port, log: log, slots: make([]slot, n), maxIdle: poolMaxIdle}
}

// client returns the connection of the next slot, dialled if need be;
// timeout, when > 0, bounds the dial (ctx may have no deadline).
func (p *pool) client(ctx context.Context, timeout time.Duration) (*proto.Client, error) {
	s := &p.slots[p.next.Add(1)%uint64(len(p.slots))]
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	idle := false
	if s.c != nil {
		select {
		case <-s.c.Done():
			s.c = nil
		default:
			if now.Sub(s.used) < p.maxIdle {
				s.used = now
				return s.c, nil
			}
			// New calls go to a fresh connection; calls still
			// running on this one get retireGrace to finish.
			p.retire(s.c)
			s.c, idle = nil, true
		}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	conn, err := p.tr.Dial(ctx, p.cid, p.port)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errEnclaveUnreachable, err)
	}
	s.c, s.used = proto.NewClient(conn, &proto.ClientOptions{Logger: p.log}), now
	if !idle && p.onConnect != nil {
		p.onConnect()
	}
	return s.c, nil
}

// retire closes c after retireGrace, or at close.
func (p *pool) retire(c *proto.Client) {
	p.retiredMu.Lock()
	if p.retired == nil {
		p.retired = make(map[*proto.Client]struct{})
	}
	p.retired[c] = struct{}{}
	p.retiredMu.Unlock()
	time.AfterFunc(retireGrace, func() {
		p.retiredMu.Lock()
		delete(p.retired, c)
		p.retiredMu.Unlock()
		c.Close()
	})
}

// call sends req to the enclave. A remote refusal comes back as a
// *proto.Error.
func (p *pool) call(ctx context.Context, req proto.Message) (proto.Message, error) {
	c, err := p.client(ctx, 0)
	if err != nil {
		return nil, err
	}
	return c.Call(ctx, req)
}

// callTimeout is call with a time limit, without a context deadline: the
// connection checks its calls' deadlines together (proto.Client.CallTimeout),
// which spares every request a timer.
func (p *pool) callTimeout(ctx context.Context, req proto.Message, timeout time.Duration) (proto.Message, error) {
	c, err := p.client(ctx, timeout)
	if err != nil {
		return nil, err
	}
	return c.CallTimeout(ctx, req, timeout)
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
	p.retiredMu.Lock()
	for c := range p.retired {
		c.Close()
	}
	p.retiredMu.Unlock()
}
