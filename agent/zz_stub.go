package agent

import (
	"context"
	"encoding/json"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
)

type Proxy interface {
	Forward(ctx context.Context, r jsonrpc.Request) (json.RawMessage, *jsonrpc.Error)
}

func (a *Agent) ethSignTransaction(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	return nil, nil
}
func (a *Agent) accountSignTransaction(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	return nil, nil
}
func (a *Agent) sendTransaction(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	return nil, nil
}
