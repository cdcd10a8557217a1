// Package admin verifies quorum-signed administrative commands: key
// creation and import, seal rotation, policy changes and their
// cancellation, freezing and unfreezing.
//
// The host carries commands to the enclave but is not trusted to say who
// authorized them. Each admin signs a command on their own machine with
// their own key ([Sign]); the signatures travel with the command in an
// [Envelope]; the enclave checks them itself against the admin [Set] of its
// measured genesis configuration ([Set.Verify]), and acts only when enough
// distinct admins signed ([Set.Threshold]). No single admin acts alone
// unless the set's quorum is 1, except to stop something: a cancel kind needs one
// signature, so that any admin can stop a pending change, and a freeze needs
// one unless the set raises it, so that any admin can halt signing at once;
// neither can move funds, loosen the policy or lift a freeze.
//
// docs/governance.md describes the format in full; in short:
//
// # Command
//
// A JSON object, at most [MaxCommandSize] bytes, parsed strictly
// (internal/strictjson: no unknown or duplicate keys, no trailing data):
//
//	{"kind": "policy_change",
//	 "genesis_hash": "<64 lowercase hex>",
//	 "not_before_ms": 1767225600000,
//	 "not_after_ms": 1767312000000,
//	 "body": {...}}
//
// genesis_hash binds the command to one deployment, so that a command
// signed by admins who administer several deployments cannot be replayed to
// another one. The command is valid from not_before_ms (inclusive) to
// not_after_ms (exclusive), Unix milliseconds, for at most [MaxValidity].
// The body depends on the kind (see [Kinds] and the *Body types).
//
// # Envelope
//
//	{"command": "<the command's exact bytes, as a JSON string>",
//	 "signatures": [{"admin": "alice", "signature": "<lowercase hex>"}, ...]}
//
// # Signatures
//
// An admin signs the message
//
//	"nitrosign admin command v1\n" || SHA-256(command bytes)
//
// (the domain [DomainCommand] followed by the 32-byte digest): with Ed25519,
// the 64-byte pure Ed25519 signature of the message; with P-256, the ASN.1
// DER ECDSA signature of SHA-256(message). Raw 64-byte r||s P-256
// signatures are refused; high-S P-256 signatures are accepted, as in
// package stamp, so signature bytes are no identifier (use
// [Command.Digest]). Approver signatures use the same construction with
// [DomainApproval] ([SignDigest], [VerifyDigest]).
//
// # Keys
//
// Admin keys are Ed25519 or P-256 [stamp.PublicKey]s. [NewKey] refuses
// Ed25519 keys that are non-canonical or of small order, under which
// anyone could forge signatures, and P-256 keys not on the curve.
package admin
