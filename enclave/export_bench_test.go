package enclave

import (
	"context"

	"github.com/nitrosign/nitrosign/proto"
)

// HandleUnreleased answers m as Handle does, but without waiting for the
// host to acknowledge the answer's audit record: the path before answers
// were released only after persistence, kept for the benchmark that
// measures what the wait costs (tests only).
func HandleUnreleased(e *Enclave, ctx context.Context, m proto.Message) proto.Message {
	return answer(e.handle(ctx, m))
}
