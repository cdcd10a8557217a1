package enclave

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/nitrosign/nitrosign/api/refusal"
	"github.com/nitrosign/nitrosign/audit"
	"github.com/nitrosign/nitrosign/proto"
)

// newChain returns the enclave's audit chain, continuing from head, with
// records capped at proto.MaxAuditRecordLen: the host fetches records in
// proto.AuditResponse, which refuses a longer one, so a record above the
// cap would never be acknowledged, and every decision after it would wait
// for ever (the enclave stops deciding when its backlog is full). A record
// that does not fit is refused before it enters the chain
// (audit.ErrRecordTooLarge), leaving the chain as it was. The chain is
// guarded by mu, and tells onAppend of every record it appends (see
// auditLog).
func newChain(s *audit.Signer, head audit.Head, mu *sync.Mutex, onAppend func(audit.Record, []byte)) *audit.Chain {
	c := audit.NewChainWith(s, head, audit.ChainOptions{Lock: mu, OnAppend: onAppend})
	c.SetMaxRecordSize(proto.MaxAuditRecordLen)
	return c
}

// appendRefusal answers a request whose record could not be appended: 400
// with rule refusal.RuleRecordTooLarge for a record too large (the request
// is at fault, and asking again cannot help), else 503 with rule
// refusal.RuleAudit (the enclave cannot record now).
func appendRefusal(err error) *Refusal {
	if errors.Is(err, audit.ErrRecordTooLarge) {
		// The sizes, without the wrappers' prefixes.
		msg := err.Error()
		if i := strings.LastIndex(msg, audit.ErrRecordTooLarge.Error()); i >= 0 {
			msg = msg[i:]
		}
		return refuseRule(refusal.CodeBadRequest, refusal.RuleRecordTooLarge,
			"the audit record of this request would not fit in the audit log ("+msg+"); nothing was signed or recorded")
	}
	return refuseRule(refusal.CodeUnavailable, refusal.RuleAudit, err.Error())
}

// maxEventList caps, in escaped bytes, a list of changes written into an
// event record's summary (the changes a policy makes). The record also
// names the policy by its hash, which covers every change, so the list is
// a reader's aid and may be cut.
const maxEventList = 16 << 10

// listWithin joins items with sep, up to maxEventList escaped bytes; the
// items past it are counted, not listed.
func listWithin(items []string, sep string) string {
	var b strings.Builder
	size := 0
	for i, it := range items {
		if i > 0 {
			it = sep + it
		}
		if size += audit.EscapedLen(it); size > maxEventList {
			if i > 0 {
				b.WriteString(sep)
			}
			fmt.Fprintf(&b, "and %d more (see the policy document of that hash)", len(items)-i)
			break
		}
		b.WriteString(it)
	}
	return b.String()
}

// clipMessage shortens a refusal's message to what an answer carries
// (proto.MaxErrorMessageLen), on a rune boundary, saying how long it was. A
// policy's reason may quote the request (an EIP-712 domain's name, say),
// and an answer with a longer message would leave without its audit record
// (proto.Serve then sends the error's code and truncated text only). The
// record keeps the request's bounded summary.
func clipMessage(s string) string {
	if len(s) <= proto.MaxErrorMessageLen && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= proto.MaxErrorMessageLen {
		return s
	}
	tail := fmt.Sprintf("... (%d bytes)", len(s))
	cut := proto.MaxErrorMessageLen - len(tail)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + tail
}
