// Package refusal defines, once, every error code and every rule name that
// nitrosign answers with or records: the code of an error answer
// (error.code in the HTTP API, proto.Error.Code between host and enclave)
// with its HTTP status, and the rule that refused (error.rule,
// proto.Error.Rule, and the rule member of an audit record).
//
// Every package that refuses (policy, limits, enclave, audit, proto, host)
// names its refusals with these constants, and those that read them
// (host metrics, client, cmd) check against [Codes] and [Rules], so that a
// code or rule exists exactly when it is defined here. docs/api.md lists
// them all; a test keeps the two in step.
//
// The constants are untyped strings on purpose. Every code and rule
// crosses a wire as a plain string (JSON answers, CBOR frames, audit
// records), decoded from bytes an adversary may have written; a named type
// on those fields would claim a validation that has not happened. Whoever
// needs to know whether a string read from a wire is a known code or rule
// asks [IsCode] or [IsRule].
//
// The package imports nothing outside the standard library, so that the
// enclave and every package it links may import it.
package refusal

// Error codes (error.code). Callers branch on the code, never on the
// message; [Status] gives each one's HTTP status.
const (
	// CodeBadRequest (400): a malformed body, field, query or transaction,
	// or not exactly one payload; with RuleRecordTooLarge, a request whose
	// audit record would be too large; with RuleReplayedCommand, an admin
	// command carried out already; with RuleApprovals, a rejection by an
	// approver who already approved; with RuleAudit, an acknowledgement of
	// an audit record the enclave does not have.
	CodeBadRequest = "bad_request"
	// CodeUnsupportedTransactionType (400): a transaction type the enclave
	// does not decode (it fails closed).
	CodeUnsupportedTransactionType = "unsupported_transaction_type"
	// CodeUnauthorized (401): the stamp is missing, malformed or does not
	// verify, or its key is not a registered client; or an admin command's
	// signatures or quorum do not verify.
	CodeUnauthorized = "unauthorized"
	// CodeStaleRequest (401): timestamp_ms is outside the accepted window.
	CodeStaleRequest = "stale_request"
	// CodeReplayedRequest (401): the client used this request_id already.
	CodeReplayedRequest = "replayed_request"
	// CodePolicyDenied (403): the policy, or a stateful rule, refused;
	// error.rule names the rule.
	CodePolicyDenied = "policy_denied"
	// CodeApprovalRejected (403): an approver rejected the request.
	CodeApprovalRejected = "approval_rejected"
	// CodeUnknownKey (404): no signing key has that id or address.
	CodeUnknownKey = "unknown_key"
	// CodeNotFound (404): no such endpoint or object (an approval id that
	// is unknown or expired).
	CodeNotFound = "not_found"
	// CodeMethodNotAllowed (405): the wrong HTTP method for the endpoint.
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeTooLarge (413): the body is larger than the endpoint accepts.
	CodeTooLarge = "too_large"
	// CodeInternal (500): a bug or an unexpected failure. Codes that
	// [IsCode] does not know have its status.
	CodeInternal = "internal"
	// CodeUnavailable (503): the enclave refuses for now: it is locked, a
	// window or backlog is full, it did not answer in time; with RuleAudit,
	// RuleCheckpoint, RuleCommandMemoryFull or RuleApprovals, the rule says
	// which resource.
	CodeUnavailable = "unavailable"
	// CodeEnclaveUnavailable (503): the host is up but has no enclave to
	// forward to: its process is not running (it died and is being
	// restarted) or the connection to it broke before it answered;
	// /v1/ready also answers it while the enclave is locked, until the
	// host has unsealed it. No answer was released; retry later.
	CodeEnclaveUnavailable = "enclave_unavailable"
	// CodeKMSAccessDenied: the enclave's answer to the host's unseal (or
	// seal) when KMS refused, usually because the key policy does not name
	// this enclave image's measurement. It goes to the host only (which
	// keeps retrying and says why in /v1/ready), never to a client; its
	// status is that of a code not meant for HTTP (500).
	CodeKMSAccessDenied = "kms_access_denied"
)

// Stateless policy rules (package policy): what one request may do on its
// own. Each refuses with CodePolicyDenied.
const (
	// RuleClientKeys: the client is not allowed to use this key.
	RuleClientKeys = "client_keys"
	// RuleKeyPolicy: the policy has no rules for this key.
	RuleKeyPolicy = "key_policy"
	// RuleChains: the chain (of a transaction, or of a permit's or Safe
	// transaction's domain) is not allowed for this key.
	RuleChains = "chains"
	// RuleTransactionTypes: the transaction's type is not one the key's
	// transaction_types names (or not one the policy format knows).
	RuleTransactionTypes = "transaction_types"
	// RuleBlobTransactions: EIP-4844 blob transactions are not allowed.
	RuleBlobTransactions = "blob_transactions"
	// RuleSetCode: EIP-7702 set-code transactions (delegations of an
	// account to contract code) are not allowed.
	RuleSetCode = "set_code"
	// RuleFeeCaps: the gas limit or a fee exceeds the key's caps for the
	// chain, or the priority fee exceeds the max fee.
	RuleFeeCaps = "fee_caps"
	// RuleContractCreation: contract creation (no "to") is not allowed.
	RuleContractCreation = "contract_creation"
	// RuleCalldata: no rule of the key covers this call: the (contract,
	// function) is not allowlisted for the chain, or the data of a Safe
	// transaction's typed data (SafeTx) is malformed. (A transaction's own
	// malformed calldata is a bad_request, refused as it is decoded,
	// before any policy.)
	RuleCalldata = "calldata"
	// RuleCallValue: the call carries more native coin than allowed: any
	// at all for token, NFT, allowance and Safe calls, more than the
	// function's max_value_wei for generic calls.
	RuleCallValue = "call_value"
	// RuleNativeTransfers: native transfers are not allowed for this key on
	// this chain.
	RuleNativeTransfers = "native_transfers"
	// RuleDestinations: the destination or recipient is not on the
	// allowlist.
	RuleDestinations = "destinations"
	// RuleMaxPerTransaction: the amount exceeds the per-transaction cap.
	RuleMaxPerTransaction = "max_per_transaction"
	// RuleTokenTransfers: the token is allowlisted, but not for this kind
	// of transfer (no transfers section, or transferFrom not enabled).
	RuleTokenTransfers = "token_transfers"
	// RuleNFTTransfers: the NFT collection is allowlisted, but transfers
	// of it are not allowed.
	RuleNFTTransfers = "nft_transfers"
	// RuleAllowanceGrants: an allowance grant (approve, increaseAllowance,
	// setApprovalForAll, EIP-2612 Permit, Permit2) to a spender or operator
	// that is not allowlisted for the token, or a grant of a token that is
	// not allowlisted, or typed data that looks like a permit without being
	// exactly one.
	RuleAllowanceGrants = "allowance_grants"
	// RuleAllowanceCaps: the allowance granted exceeds the spender's cap,
	// or is unlimited and the cap is not "unlimited".
	RuleAllowanceCaps = "allowance_caps"
	// RuleSafeTransactions: a Safe transaction (execTransaction, or SafeTx
	// typed data) for a Safe that is not allowlisted, or a Safe request the
	// policy cannot check (a SafeMessage, a malformed SafeTx).
	RuleSafeTransactions = "safe_transactions"
	// RuleSafeOperation: a Safe DELEGATECALL other than to an allowlisted
	// MultiSendCallOnly running multiSend, or a DELEGATECALL inside a
	// MultiSend batch. A delegatecall runs foreign code with the Safe's full
	// authority: the Bybit theft (2025).
	RuleSafeOperation = "safe_operation"
	// RuleSafeSelfCall: a Safe transaction calls the Safe itself (owners,
	// threshold, guard, modules, fallback handler, singleton), directly or
	// through a MultiSend entry (whose zero "to" means the Safe itself).
	RuleSafeSelfCall = "safe_self_call"
	// RuleSafeRefund: a Safe transaction pays a gas refund (non-zero
	// gasPrice, gasToken or refundReceiver), a payment out of the Safe that
	// no other rule sees.
	RuleSafeRefund = "safe_refund"
	// RuleMultiSend: multiSend called other than by a Safe's DELEGATECALL
	// to an allowlisted MultiSendCallOnly.
	RuleMultiSend = "multisend"
	// RulePersonalMessages: EIP-191 personal messages are not allowed for
	// this key.
	RulePersonalMessages = "personal_messages"
	// RuleRawDigest: the request amounts to signing a bare 32-byte digest,
	// which is off unless the key's raw_digest switch is on: for example a
	// personal message of exactly 32 bytes, which a Safe accepts as an
	// owner's approval of that transaction hash.
	RuleRawDigest = "raw_digest"
	// RuleTypedDataDomains: the EIP-712 domain is not on the key's
	// allowlist.
	RuleTypedDataDomains = "typed_data_domains"
)

// Stateful rules (the enclave, with package policy/stateful): what a request may do
// given what came before it.
const (
	// RuleFrozen (403 policy_denied): the key (or every key) is frozen;
	// only an admin quorum unfreezes it. Also the rule of the audit record
	// that freezes a key, and (400 bad_request) of an admin freeze command
	// whose target is frozen already.
	RuleFrozen = "frozen"
	// RuleRollingLimit (403 policy_denied): the request would exceed a
	// rolling-window limit of the key (its stateful.RuleID strings are
	// "rolling_limit:KEY:N"), or grants an unlimited allowance of a token a
	// limit counts.
	RuleRollingLimit = "rolling_limit"
	// RuleVelocity (403 policy_denied): the request would exceed the key's
	// transaction count in its window (its stateful.RuleID string is
	// "velocity:KEY").
	RuleVelocity = "velocity"
	// RuleApprovals: the rule of a request held for approvals and of the
	// decisions on it (approval_rejected, and its expiry); 503 unavailable
	// when the approvals store or a client's quota is full (fail closed);
	// 400 bad_request for a rejection by an approver who already approved.
	RuleApprovals = "approvals"
	// RuleCheckpoint (503 unavailable): the host has not stored a recent
	// enough checkpoint: too many transactions since the newest one it
	// acknowledged (stateful.Options.RequireFresh), or an admin command was
	// carried out and recorded but no checkpoint holding it was
	// acknowledged in time (its answer is withheld).
	RuleCheckpoint = "checkpoint"
)

// Rules of the enclave's own machinery: the audit log and admin commands.
const (
	// RuleAudit: the audit pipeline refuses: the host cannot persist, or
	// did not acknowledge in time, the records (503 unavailable; the
	// answer is withheld and nothing is decided), or acknowledged a record
	// the enclave does not have (400 bad_request).
	RuleAudit = "audit"
	// RuleRecordTooLarge (400 bad_request): the request's audit record
	// would be larger than the audit log carries (proto.MaxAuditRecordLen),
	// even with its summary bounded (package summary). Nothing else
	// happens: no record, no signature, no reservation, no count toward a
	// freeze. Its request_id stays used (the replay check comes first); a
	// client sends a smaller request under a new id.
	RuleRecordTooLarge = "record_too_large"
	// RuleReplayedCommand (400 bad_request): the admin command (by its
	// digest) was carried out already; nothing changed.
	RuleReplayedCommand = "replayed_command"
	// RuleCommandMemoryFull (503 unavailable): the enclave remembers as
	// many admin commands whose validity has not ended as it can
	// (enclave.MaxSpentCommands), and could not remember another; nothing
	// changed.
	RuleCommandMemoryFull = "command_memory_full"
)

// Rules of boot records: what the enclave found at start, in the rule
// member of its boot (or genesis) record. No answer names them; the host
// counts the rollbacks (nitrosign_audit_rollbacks_total).
const (
	// RuleAuditRollback: the host's log ends before the acknowledged head
	// of the checkpoint it handed back, or holds another record at that
	// seq: records the host had acknowledged persisting (and whose answers
	// may have been released) are gone from it.
	RuleAuditRollback = "audit_rollback"
	// RuleCheckpointRollback: the host handed back a checkpoint older than
	// its own last record says it had acknowledged storing (the record's
	// checkpoint member), or none, or one that does not open, while the
	// log says one was stored: limit usage, freezes, keys and policy would
	// go back.
	RuleCheckpointRollback = "checkpoint_rollback"
	// RuleSeedGenerationRollback: the sealed seed handed back is of an
	// older sealing generation than the checkpoint knew of: a re-wrap
	// (seal_rotate) was undone.
	RuleSeedGenerationRollback = "seed_generation_rollback"
	// RuleAuditCheckpoint: the audit head or checkpoint could not be used
	// at start: the host's last record is not this enclave's, the
	// checkpoint does not open, or none came with a log that has records.
	// (A log or checkpoint rolled back is named by a rollback rule.)
	RuleAuditCheckpoint = "audit_checkpoint"
)

// codes lists every code with its HTTP status, in the order of the table
// of docs/api.md. (Numbers rather than net/http's constants keep net/http
// out of what the enclave links.)
var codes = []struct {
	code   string
	status int
}{
	{CodeBadRequest, 400},
	{CodeUnsupportedTransactionType, 400},
	{CodeUnauthorized, 401},
	{CodeStaleRequest, 401},
	{CodeReplayedRequest, 401},
	{CodePolicyDenied, 403},
	{CodeApprovalRejected, 403},
	{CodeUnknownKey, 404},
	{CodeNotFound, 404},
	{CodeMethodNotAllowed, 405},
	{CodeTooLarge, 413},
	{CodeInternal, 500},
	{CodeUnavailable, 503},
	{CodeEnclaveUnavailable, 503},
	{CodeKMSAccessDenied, 500},
}

// rules lists every rule, grouped as the constants are.
var rules = []string{
	RuleClientKeys, RuleKeyPolicy, RuleChains, RuleTransactionTypes,
	RuleBlobTransactions, RuleSetCode, RuleFeeCaps, RuleContractCreation,
	RuleCalldata, RuleCallValue, RuleNativeTransfers, RuleDestinations,
	RuleMaxPerTransaction, RuleTokenTransfers, RuleNFTTransfers,
	RuleAllowanceGrants, RuleAllowanceCaps, RuleSafeTransactions,
	RuleSafeOperation, RuleSafeSelfCall, RuleSafeRefund, RuleMultiSend,
	RulePersonalMessages, RuleRawDigest, RuleTypedDataDomains,

	RuleFrozen, RuleRollingLimit, RuleVelocity, RuleApprovals, RuleCheckpoint,

	RuleAudit, RuleRecordTooLarge, RuleReplayedCommand, RuleCommandMemoryFull,

	RuleAuditRollback, RuleCheckpointRollback, RuleSeedGenerationRollback,
	RuleAuditCheckpoint,
}

// Codes returns every error code, in the order of docs/api.md's table. The
// slice is the caller's.
func Codes() []string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = c.code
	}
	return out
}

// Rules returns every rule name. The slice is the caller's.
func Rules() []string {
	return append([]string(nil), rules...)
}

// IsCode reports whether code is one of the codes defined here.
func IsCode(code string) bool {
	for _, c := range codes {
		if c.code == code {
			return true
		}
	}
	return false
}

// IsRule reports whether rule is one of the rules defined here.
func IsRule(rule string) bool {
	for _, r := range rules {
		if r == rule {
			return true
		}
	}
	return false
}

// Status returns the HTTP status of code; a code IsCode does not know is
// an internal error (500).
func Status(code string) int {
	for _, c := range codes {
		if c.code == code {
			return c.status
		}
	}
	return 500
}
