// Errors of the client. Branch on NitrosignError's code and rule (the
// codes and rules of docs/api.md, "Refusals"), never on the message.

/**
 * A refusal by the host or the enclave (a non-2xx answer), or a failure to
 * get an answer. `code` and `rule` are the API error's (`policy_denied`,
 * `max_per_transaction`); both are empty when the answer was not a
 * nitrosign error (a proxy's 502 page, a timeout, a connection refused),
 * and `status` is 0 when there was no answer at all.
 */
export class NitrosignError extends Error {
  /**
   * @param {string} message
   * @param {{ status?: number, code?: string, rule?: string, approvalId?: string, cause?: unknown }} [fields]
   */
  constructor(message, fields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = "NitrosignError";
    /** The HTTP status, or 0 when no answer came. */
    this.status = fields.status ?? 0;
    /** The API error's code (docs/api.md, "Refusals"), or "". */
    this.code = fields.code ?? "";
    /** The rule that refused, or "". */
    this.rule = fields.rule ?? "";
    /** The approval id, for errors about a request that waited for approvals. */
    this.approvalId = fields.approvalId ?? "";
  }
}

/**
 * The request exceeds a policy's approval threshold: the enclave holds it
 * until the key's approvers approve it (or it expires). It is not a
 * refusal. The client checked that the host's approval digest is the
 * digest of the body it sent. Fetch the signature once approved with
 * NitrosignClient.waitForApproval(approvalId).
 */
export class PendingApprovalError extends Error {
  /**
   * @param {import("../index.js").PendingApproval} pending
   * @param {Uint8Array} body
   * @param {string} [why]
   */
  constructor(pending, body, why) {
    super(
      `nitrosign: the request waits for approvals (approval ${pending.approval_id}, ${pending.quorum} needed, digest ${pending.digest})` +
        (why ? `: ${why}` : ""),
    );
    this.name = "PendingApprovalError";
    /** The id to follow with GET /v1/approvals/{id}. */
    this.approvalId = pending.approval_id;
    /** The approval digest of the body sent (approvers sign it). */
    this.digest = pending.digest;
    /** The number of approvals needed. */
    this.quorum = pending.quorum;
    /** When the request expires, in Unix milliseconds. */
    this.expiresAtMs = pending.expires_at_ms;
    /** The host's answer. */
    this.pending = pending;
    /** The exact stamped body sent. */
    this.body = body;
  }
}
