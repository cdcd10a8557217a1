package enclave

import (
	"errors"
	"fmt"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/proto"
)

// Refusal is the error the enclave's handlers return: what the host is
// answered (a refusal.Code*), the rule that refused (a refusal.Rule*, ""
// when no rule did: a malformed request, a locked enclave), the message,
// and, for a refusal that was recorded, the line of its audit record,
// which the answer carries and which is released only once the host has
// acknowledged it (Enclave.released).
//
// The handlers speak in Go errors, and the wire's *proto.Error is made in
// one place, wireError, from a Refusal or from any other error (which
// becomes refusal.CodeInternal with its text): so the protocol's error
// shape is not the enclave's internal error type, and a handler cannot
// forget a field of it.
type Refusal struct {
	Code   string
	Rule   string
	Msg    string
	Record []byte
}

func (r *Refusal) Error() string {
	if r.Rule != "" {
		return fmt.Sprintf("%s (rule %s): %s", r.Code, r.Rule, r.Msg)
	}
	return r.Code + ": " + r.Msg
}

// refuse returns a Refusal of code, no rule, with a formatted message.
func refuse(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// refuseRule returns a Refusal of code by rule, with message msg.
func refuseRule(code, rule, msg string) *Refusal {
	return &Refusal{Code: code, Rule: rule, Msg: msg}
}

// recorded returns a Refusal whose audit record line is line: its answer
// is released once the host acknowledges that record.
func recorded(code, rule, msg string, line []byte) *Refusal {
	return &Refusal{Code: code, Rule: rule, Msg: msg, Record: line}
}

// message is err's message as an answer carries it: a Refusal's Msg, else
// the error's text.
func message(err error) string {
	if r, ok := errors.AsType[*Refusal](err); ok {
		return r.Msg
	}
	return err.Error()
}

// ruleOf is the rule that refused with err, "" when none did.
func ruleOf(err error) string {
	if r, ok := errors.AsType[*Refusal](err); ok {
		return r.Rule
	}
	return ""
}

// wireError is the answer to a request that err refused: the one place in
// the enclave that makes a proto.Error (TestOneWireAdapter). An error
// that is not a Refusal is a bug's or an unexpected failure's: it is
// answered refusal.CodeInternal, with its text.
func wireError(err error) *proto.Error {
	if r, ok := errors.AsType[*Refusal](err); ok {
		return &proto.Error{Code: r.Code, Rule: r.Rule, Message: r.Msg, AuditRecord: r.Record}
	}
	return &proto.Error{Code: refusal.CodeInternal, Message: err.Error()}
}

// answer is a handler's result as one message: resp, or err's wire form.
func answer(resp proto.Message, err error) proto.Message {
	if err != nil {
		return wireError(err)
	}
	return resp
}
