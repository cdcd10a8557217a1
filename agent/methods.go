package agent

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/agent/jsonrpc"
	"github.com/nitrosign/nitrosign/api"
	"github.com/nitrosign/nitrosign/ethtx"
)

// ClefVersion is the answer to account_version: the version of Clef's
// external API whose methods the agent serves (go-ethereum's
// signer/core.ExternalAPIVersion), which go-ethereum's external backend
// asks for when it connects.
const ClefVersion = "6.1.0"

// Clef's account_signData content types the agent signs.
const (
	mimeTextPlain = "text/plain"
	mimeTyped     = "data/typed"
)

// method is one JSON-RPC method: params are the positional parameters.
type method struct {
	min, max int  // number of params
	signs    bool // signs something: refused as a notification
	call     func(a *Agent, ctx context.Context, params []json.RawMessage) (any, *jsonrpc.Error)
}

var methods map[string]method

func init() {
	methods = map[string]method{
		"eth_accounts":            {0, 0, false, (*Agent).accounts},
		"account_list":            {0, 0, false, (*Agent).accounts},
		"account_version":         {0, 0, false, func(*Agent, context.Context, []json.RawMessage) (any, *jsonrpc.Error) { return ClefVersion, nil }},
		"eth_sign":                {2, 2, true, (*Agent).ethSign},
		"personal_sign":           {2, 2, true, (*Agent).personalSign},
		"eth_signTypedData":       {2, 2, true, (*Agent).signTypedData},
		"eth_signTypedData_v4":    {2, 2, true, (*Agent).signTypedData},
		"account_signTypedData":   {2, 2, true, (*Agent).signTypedData},
		"account_signData":        {3, 3, true, (*Agent).signData},
		"eth_signTransaction":     {1, 1, true, (*Agent).ethSignTransaction},
		"account_signTransaction": {1, 2, true, (*Agent).accountSignTransaction},
		"eth_sendTransaction":     {1, 1, true, (*Agent).sendTransaction},
		"nitrosign_approval":      {1, 1, true, (*Agent).approvalMethod},
	}
}

// reqInfo is what a request's log line says, filled in as it is served.
type reqInfo struct {
	account, code, rule, approvalID string
	auditSeq                        uint64
}

type infoKey struct{}

// infoFrom returns the request's log fields (a throwaway outside
// Dispatch).
func infoFrom(ctx context.Context) *reqInfo {
	if i, ok := ctx.Value(infoKey{}).(*reqInfo); ok {
		return i
	}
	return &reqInfo{}
}

// Dispatch answers one JSON-RPC request: it is the [jsonrpc.DispatchFunc]
// of the agent's servers, and logs one line per request.
func (a *Agent) Dispatch(ctx context.Context, r jsonrpc.Request) (any, *jsonrpc.Error) {
	start := time.Now()
	info := &reqInfo{}
	ctx = context.WithValue(ctx, infoKey{}, info)
	res, jerr := a.dispatch(ctx, r)
	outcome := "ok"
	attrs := []any{"method", r.Method}
	if jerr != nil {
		switch jerr.Code {
		case jsonrpc.CodeRefused:
			outcome = "refused"
		case jsonrpc.CodeApprovalPending:
			outcome = "pending"
		case jsonrpc.CodeAttestationFailed:
			outcome = "attestation_failed"
		case jsonrpc.CodeEnclaveUnavailable:
			outcome = "unavailable"
		default:
			outcome = "error"
		}
		attrs = append(attrs, "code", jerr.Code)
	}
	attrs = append(attrs, "outcome", outcome)
	for _, kv := range [][2]string{{"account", info.account}, {"refusal", info.code}, {"rule", info.rule}, {"approval_id", info.approvalID}} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0], kv[1])
		}
	}
	if info.auditSeq != 0 {
		attrs = append(attrs, "audit_seq", info.auditSeq)
	}
	attrs = append(attrs, "duration", time.Since(start))
	if _, served := methods[r.Method]; !served && jerr == nil {
		// Forwarded reads (eth_blockNumber polls and the like) would
		// drown the signing lines.
		a.log.Debug("request", attrs...)
	} else {
		a.log.Info("request", attrs...)
	}
	return res, jerr
}

func (a *Agent) dispatch(ctx context.Context, r jsonrpc.Request) (any, *jsonrpc.Error) {
	if a.cfg.Proxy == nil && a.cfg.ChainID != nil && (r.Method == "eth_chainId" || r.Method == "net_version") {
		return a.chainID(r)
	}
	m, ok := methods[r.Method]
	if !ok || (r.Method == "eth_sendTransaction" && a.cfg.Proxy == nil) {
		if a.cfg.Proxy != nil {
			res, jerr := a.cfg.Proxy.Forward(ctx, r)
			if jerr != nil {
				return nil, jerr
			}
			return res, nil
		}
		return nil, jsonrpc.NewError(jsonrpc.CodeMethodNotFound, fmt.Sprintf("agent: method %q is not served (give the agent an --upstream node to forward it)", r.Method), nil)
	}
	if m.signs && r.IsNotification() {
		return nil, jsonrpc.NewError(jsonrpc.CodeInvalidRequest, "agent: "+r.Method+" signs: it needs an id, not a notification", nil)
	}
	var params []json.RawMessage
	if len(r.Params) > 0 {
		if r.Params[0] != '[' {
			return nil, invalidParams("%s takes its parameters by position (an array)", r.Method)
		}
		if err := json.Unmarshal(r.Params, &params); err != nil {
			return nil, invalidParams("params: %v", err)
		}
	}
	if len(params) < m.min || len(params) > m.max {
		if m.min == m.max {
			return nil, invalidParams("%s takes %d parameters, got %d", r.Method, m.min, len(params))
		}
		return nil, invalidParams("%s takes %d to %d parameters, got %d", r.Method, m.min, m.max, len(params))
	}
	return m.call(a, ctx, params)
}

// chainID answers eth_chainId (a quantity) and net_version (a decimal
// string) from Config.ChainID, for a wallet library's network detection
// against an agent without a node.
func (a *Agent) chainID(r jsonrpc.Request) (any, *jsonrpc.Error) {
	if p := strings.TrimSpace(string(r.Params)); p != "" && p != "[]" && p != "null" {
		return nil, invalidParams("%s takes no parameters", r.Method)
	}
	if r.Method == "net_version" {
		return a.cfg.ChainID.String(), nil
	}
	return "0x" + a.cfg.ChainID.Text(16), nil
}

func (a *Agent) accounts(ctx context.Context, _ []json.RawMessage) (any, *jsonrpc.Error) {
	addrs, err := a.Accounts(ctx)
	if err != nil {
		return nil, attestationFailed(err)
	}
	out := make([]string, len(addrs))
	for i, ad := range addrs {
		out[i] = ad.Hex()
	}
	return out, nil
}

// ethSign: eth_sign [address, data], data's bytes signed as an EIP-191
// personal message (as go-ethereum's and Web3Signer's eth_sign do).
func (a *Agent) ethSign(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	from, jerr := paramAddress(p[0], "address")
	if jerr != nil {
		return nil, jerr
	}
	msg, jerr := paramMessage(p[1], "data")
	if jerr != nil {
		return nil, jerr
	}
	return a.signPersonal(ctx, from, msg)
}

// personalSign: personal_sign [data, address], in this order only.
func (a *Agent) personalSign(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	msg, jerr := paramMessage(p[0], "data")
	if jerr != nil {
		return nil, jerr
	}
	from, jerr := paramAddress(p[1], "address")
	if jerr != nil {
		return nil, jerr
	}
	return a.signPersonal(ctx, from, msg)
}

func (a *Agent) signPersonal(ctx context.Context, from ethtx.Address, msg []byte) (any, *jsonrpc.Error) {
	req := &api.SignRequest{EthPersonalMessage: &api.EthPersonalMessage{Message: "0x" + hex.EncodeToString(msg)}}
	return a.sign(ctx, from, req, messageSignature, nil)
}

// signTypedData: eth_signTypedData(_v4) and account_signTypedData
// [address, typedData].
func (a *Agent) signTypedData(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	from, jerr := paramAddress(p[0], "address")
	if jerr != nil {
		return nil, jerr
	}
	doc, jerr := paramTypedData(p[1], "typedData")
	if jerr != nil {
		return nil, jerr
	}
	return a.signTyped(ctx, from, doc)
}

func (a *Agent) signTyped(ctx context.Context, from ethtx.Address, doc []byte) (any, *jsonrpc.Error) {
	return a.sign(ctx, from, &api.SignRequest{EthTypedData: &api.EthTypedData{JSON: doc}}, messageSignature, nil)
}

// signData: Clef's account_signData [contentType, address, data].
func (a *Agent) signData(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	ct, jerr := paramString(p[0], "contentType")
	if jerr != nil {
		return nil, jerr
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, invalidParams("contentType %q: %v", ct, err)
	}
	from, jerr := paramAddress(p[1], "address")
	if jerr != nil {
		return nil, jerr
	}
	switch mt {
	case mimeTextPlain:
		msg, jerr := paramMessage(p[2], "data")
		if jerr != nil {
			return nil, jerr
		}
		return a.signPersonal(ctx, from, msg)
	case mimeTyped:
		// Clef reads data/typed as the hex of the JSON (what
		// go-ethereum's external backend's SignData sends); an object,
		// or a string holding one, is taken too.
		doc, jerr := paramTypedDataOrHex(p[2], "data")
		if jerr != nil {
			return nil, jerr
		}
		return a.signTyped(ctx, from, doc)
	}
	return nil, invalidParams("contentType %q is not signed by nitrosign (only %s and %s: the enclave signs only what it decodes)", mt, mimeTextPlain, mimeTyped)
}

func (a *Agent) approvalMethod(ctx context.Context, p []json.RawMessage) (any, *jsonrpc.Error) {
	id, jerr := paramString(p[0], "approvalId")
	if jerr != nil {
		return nil, jerr
	}
	if id == "" || len(id) > api.MaxApprovalIDLen {
		return nil, invalidParams("approvalId: want 1 to %d characters", api.MaxApprovalIDLen)
	}
	return a.approval(ctx, id)
}

// paramString decodes a string parameter.
func paramString(raw json.RawMessage, name string) (string, *jsonrpc.Error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", invalidParams("%s: want a string", name)
	}
	return s, nil
}

// paramAddress decodes an address parameter: 0x and 40 hex digits, a
// valid EIP-55 checksum if in mixed case.
func paramAddress(raw json.RawMessage, name string) (ethtx.Address, *jsonrpc.Error) {
	s, jerr := paramString(raw, name)
	if jerr != nil {
		return ethtx.Address{}, jerr
	}
	addr, err := ethtx.ParseAddress(s)
	if err != nil {
		return ethtx.Address{}, invalidParams("%s: %s", name, strings.TrimPrefix(err.Error(), "ethtx: address: "))
	}
	return addr, nil
}

// paramMessage decodes a message to sign: 0x-prefixed hex of at least one
// byte, at most maxMessage bytes. Text that is not hex is refused rather
// than signed as its UTF-8 bytes: "0x1234" would be ambiguous.
func paramMessage(raw json.RawMessage, name string) ([]byte, *jsonrpc.Error) {
	s, jerr := paramString(raw, name)
	if jerr != nil {
		return nil, jerr
	}
	digits, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return nil, invalidParams(`%s: want 0x-prefixed hex (hexlify text first)`, name)
	}
	if digits == "" {
		return nil, invalidParams("%s: empty message: the enclave signs no empty message", name)
	}
	if len(digits) > 2*maxMessage {
		return nil, invalidParams("%s: message longer than %d bytes", name, maxMessage)
	}
	b, err := hex.DecodeString(digits)
	if err != nil {
		return nil, invalidParams("%s: not an even number of hex digits", name)
	}
	return b, nil
}

// maxMessage caps a personal message, well above any login message and
// below the host's body limit once hex-encoded.
const maxMessage = 64 << 10

// paramTypedDataOrHex is paramTypedData, or the document's 0x-hex.
func paramTypedDataOrHex(raw json.RawMessage, name string) ([]byte, *jsonrpc.Error) {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil && strings.HasPrefix(s, "0x") {
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return nil, invalidParams("%s: not hex", name)
		}
		enc, _ := json.Marshal(string(b))
		if !utf8.Valid(b) {
			return nil, invalidParams("%s: the hex does not encode UTF-8 JSON", name)
		}
		raw = enc
	}
	return paramTypedData(raw, name)
}

// paramTypedData returns the typed-data document of a parameter given as
// a JSON object (its bytes as sent) or as a string holding one (the
// string's contents).
func paramTypedData(raw json.RawMessage, name string) ([]byte, *jsonrpc.Error) {
	doc := []byte(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalidParams("%s: %v", name, err)
		}
		doc = bytes.TrimSpace([]byte(s))
		if !json.Valid(doc) {
			return nil, invalidParams("%s: the string is not JSON", name)
		}
	}
	if len(doc) == 0 || doc[0] != '{' {
		return nil, invalidParams("%s: want a typed-data object (or a string holding one)", name)
	}
	if len(doc) > api.MaxBodySize/2 {
		return nil, invalidParams("%s: larger than %d bytes", name, api.MaxBodySize/2)
	}
	return doc, nil
}
