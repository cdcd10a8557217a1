package ethproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
)

// signingMethods are answered by the agent itself, never by the node.
var signingMethods = map[string]bool{
	"eth_sign":             true,
	"personal_sign":        true,
	"eth_signTransaction":  true,
	"eth_sendTransaction":  true,
	"eth_accounts":         true,
	"eth_signTypedData":    true,
	"eth_signTypedData_v1": true,
	"eth_signTypedData_v3": true,
	"eth_signTypedData_v4": true,
}

// refusedNamespaces hold keys or administer the node.
var refusedNamespaces = []string{"account_", "personal_", "admin_", "debug_", "miner_", "engine_", "clique_", "txpool_"}

// Refused returns why method must not be forwarded to the node, or "" when
// it may be; the package documentation gives the reasons.
func Refused(method string) string {
	if signingMethods[method] || strings.HasPrefix(method, "eth_signTypedData") {
		return "it signs, and only the agent signs, through the enclave"
	}
	for _, ns := range refusedNamespaces {
		if strings.HasPrefix(method, ns) {
			return fmt.Sprintf("the %s namespace uses the node's own accounts or administers the node", strings.TrimSuffix(ns, "_"))
		}
	}
	return ""
}

// Forward sends r to the node as it is (method and params) and returns the
// node's result as answered. An error the node answered is returned with
// its code, message and data; a node that cannot be reached or answers
// badly is a jsonrpc.CodeInternalError that says so (without the node's
// URL); a method that Refused names is refused with
// jsonrpc.CodeMethodNotFound and never reaches the node.
func (p *Proxy) Forward(ctx context.Context, r jsonrpc.Request) (json.RawMessage, *jsonrpc.Error) {
	if r.Invalid != nil {
		return nil, r.Invalid
	}
	if why := Refused(r.Method); why != "" {
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, fmt.Sprintf("ethproxy: %s is not forwarded to the node: %s", r.Method, why), nil)
	}
	res, err := p.up.call(ctx, r.Method, r.Params)
	if err != nil {
		var rpcErr *jsonrpc.Error
		if errors.As(err, &rpcErr) {
			return nil, rpcErr
		}
		p.log.Warn("ethproxy: forwarding failed", "method", r.Method, "err", err)
		return nil, jsonrpc.NewError(jsonrpc.CodeInternalError, err.Error(), nil)
	}
	return res, nil
}
