package summary

import (
	"github.com/nitrosign/nitrosign/api/request"
	"github.com/nitrosign/nitrosign/policy"
)

// Request summarises a decoded sign request for key under p (nil: no
// labels, token amounts in raw units), whatever its payload: the summary
// the enclave records and shows approvers, and the one `nitrosign approve`
// computes locally to compare with it. A request without a payload, which
// package request never returns, summarises to nothing.
func Request(r *request.Request, key Key, p *policy.Policy) Summary {
	switch {
	case r.Transaction != nil:
		return Transaction(r.Transaction.Tx, r.Transaction.Call, key, r.Digest, p)
	case r.PersonalMessage != nil:
		return PersonalMessage(r.PersonalMessage.Message, key, r.Digest)
	case r.TypedData != nil:
		return TypedData(r.TypedData.Data, key, p)
	}
	return Summary{}
}

// RequestText is Request(r, key, p).String(): the text of the summary
// the enclave records, made without the lines for a transaction
// (TransactionText).
func RequestText(r *request.Request, key Key, p *policy.Policy) string {
	if r.Transaction != nil {
		return TransactionText(r.Transaction.Tx, r.Transaction.Call, key, r.Digest, p)
	}
	return Request(r, key, p).String()
}
