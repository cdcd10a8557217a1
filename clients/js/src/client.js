// NitrosignClient: the REST client of nitrosign-host (docs/api.md), the JS
// counterpart of the Go package client.
//
// Every POST /v1/sign body is built once as bytes, stamped, and sent as it
// is. Answers are read with a size cap and checked before they are
// returned: a 200 must carry a well-formed signature, a 202 an approval
// digest that is the digest of the body sent. The client does not verify
// the enclave's attestation: it trusts the host to reach the right enclave.
// The agent (`nitrosign agent`) verifies attestations and checks every
// signature against an attested key; use it where that matters.

import { setTimeout as sleep } from "node:timers/promises";
import { KeyObject, randomBytes } from "node:crypto";
import { NitrosignError, PendingApprovalError } from "./errors.js";
import { STAMP_HEADER, createStamp, parseStampKey, stampSignerFromKeyObject } from "./stamp.js";
import {
  MAX_PERSONAL_MESSAGE_SIZE,
  approvalDigest,
  buildSignBody,
  checkKey,
  newRequestID,
  payloadHex,
  typedDataJSON,
} from "./request.js";
import { parseEnclaveSignature } from "./signature.js";

/** Each HTTP call's default time limit, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** The largest answer read, in bytes. */
export const DEFAULT_MAX_RESPONSE_BYTES = 1 << 20;
/** The default interval between polls of a pending approval, in milliseconds. */
export const DEFAULT_APPROVAL_POLL_INTERVAL_MS = 1_000;
/** The shortest interval between polls of a pending approval, in milliseconds. */
export const MIN_APPROVAL_POLL_INTERVAL_MS = 250;

const MAX_APPROVAL_ID_LENGTH = 64;

export class NitrosignClient {
  /** @type {URL} */
  #base;
  /** @type {import("../index.js").StampSigner | null} */
  #signer;
  /** @type {typeof fetch} */
  #fetch;
  #timeoutMs;
  #maxResponseBytes;
  #approvalTimeoutMs;
  #approvalPollIntervalMs;
  /** @type {() => number} */
  #now;
  /** @type {(n: number) => Uint8Array} */
  #random;

  /**
   * @param {import("../index.js").NitrosignClientOptions} options
   */
  constructor(options) {
    if (options === null || typeof options !== "object") {
      throw new TypeError("nitrosign: client: want an options object with url");
    }
    this.#base = parseBaseURL(options.url);
    const key = options.stampKey;
    if (key === undefined || key === null) {
      this.#signer = null;
    } else if (typeof key === "string" || key instanceof Uint8Array) {
      this.#signer = parseStampKey(key);
    } else if (key instanceof KeyObject) {
      this.#signer = stampSignerFromKeyObject(key);
    } else if (typeof key === "object" && typeof key.sign === "function") {
      this.#signer = key;
    } else {
      throw new TypeError("nitrosign: client: stampKey: want PEM text, a private KeyObject or a StampSigner");
    }
    this.#fetch = options.fetch ?? globalThis.fetch;
    if (typeof this.#fetch !== "function") {
      throw new TypeError("nitrosign: client: no fetch (Node 20 or later has one)");
    }
    this.#timeoutMs = positive("timeoutMs", options.timeoutMs, DEFAULT_TIMEOUT_MS);
    this.#maxResponseBytes = positive("maxResponseBytes", options.maxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES);
    this.#approvalTimeoutMs = options.approvalTimeoutMs ?? 0;
    if (!Number.isFinite(this.#approvalTimeoutMs) || this.#approvalTimeoutMs < 0) {
      throw new RangeError("nitrosign: client: approvalTimeoutMs must be 0 (do not wait) or a positive number of milliseconds");
    }
    this.#approvalPollIntervalMs = Math.max(
      MIN_APPROVAL_POLL_INTERVAL_MS,
      positive("approvalPollIntervalMs", options.approvalPollIntervalMs, DEFAULT_APPROVAL_POLL_INTERVAL_MS),
    );
    this.#now = options.now ?? Date.now;
    this.#random = options.randomBytes ?? randomBytes;
  }

  /** The host's base URL. */
  get url() {
    return this.#base.href.replace(/\/$/, "");
  }

  /** The public key requests are stamped with, or null for a read-only client. */
  get stampPublicKey() {
    return this.#signer === null ? null : { scheme: this.#signer.scheme, publicKey: new Uint8Array(this.#signer.publicKey) };
  }

  /**
   * Asks the enclave to sign an unsigned transaction (the EIP-2718 envelope
   * without signature, or the EIP-155 nine-item RLP list of a legacy one).
   * @param {string} key the key's id or address
   * @param {Uint8Array | string} unsigned
   * @param {import("../index.js").CallOptions} [opts]
   */
  async signTransaction(key, unsigned, opts) {
    return this.sign(key, { eth_transaction: { unsigned: payloadHex("eth_transaction.unsigned", unsigned) } }, opts);
  }

  /**
   * Asks for an EIP-191 personal_sign signature over the message bytes (1
   * byte to 64 KiB; encode text with TextEncoder). The answer's signature
   * has y-parity 0 or 1: see toRecoverableSignature.
   * @param {string} key
   * @param {Uint8Array | string} message bytes, or 0x-prefixed hex
   * @param {import("../index.js").CallOptions} [opts]
   */
  async signPersonalMessage(key, message, opts) {
    const hex = payloadHex("eth_personal_message.message", message);
    if ((hex.length - 2) / 2 > MAX_PERSONAL_MESSAGE_SIZE) {
      throw new Error(`nitrosign: eth_personal_message.message: ${(hex.length - 2) / 2} bytes, limit ${MAX_PERSONAL_MESSAGE_SIZE}`);
    }
    return this.sign(key, { eth_personal_message: { message: hex } }, opts);
  }

  /**
   * Asks for an EIP-712 signature over typed data in eth_signTypedData_v4
   * form ({types, primaryType, domain, message}), an object or its JSON
   * text (sent compacted, members as written).
   * @param {string} key
   * @param {string | object} typedData
   * @param {import("../index.js").CallOptions} [opts]
   */
  async signTypedData(key, typedData, opts) {
    return this.sign(key, { eth_typed_data: typedDataJSON(typedData) }, opts);
  }

  /**
   * Builds, stamps and sends a sign request with one payload, and returns
   * the enclave's answer. A 202 (the request waits for approvals) is
   * followed for up to the client's approvalTimeoutMs (or opts'): a
   * signature that comes within it is returned; otherwise it throws a
   * PendingApprovalError carrying the approval id.
   *
   * A call that times out or loses its connection may still have been
   * signed: a retry is a new request (a new request_id), which the policy
   * counts again.
   * @param {string} key
   * @param {import("./request.js").Payload} payload
   * @param {import("../index.js").CallOptions} [opts]
   * @returns {Promise<import("../index.js").SignResponse>}
   */
  async sign(key, payload, opts = {}) {
    const { body, stamp } = await this.stampRequest(key, payload);
    const answer = await this.#send("POST", "/v1/sign", { body, stamp, accept202: true, signal: opts.signal });
    if (answer.status === 202) {
      const pending = checkPending(answer.json, body);
      const waitMs = opts.approvalTimeoutMs ?? this.#approvalTimeoutMs;
      if (waitMs <= 0) {
        throw new PendingApprovalError(pending, body);
      }
      return this.#wait(pending.approval_id, waitMs, opts.signal, pending, body);
    }
    return checkSignResponse(answer.json, "POST /v1/sign");
  }

  /**
   * Builds and stamps a sign request without sending it: the exact body
   * bytes and the X-Nitrosign-Stamp header value. It can be sent once, within
   * five minutes.
   * @param {string} key
   * @param {import("./request.js").Payload} payload
   * @returns {Promise<{ body: Uint8Array, stamp: string }>}
   */
  async stampRequest(key, payload) {
    if (this.#signer === null) {
      throw new Error("nitrosign: client: no stampKey to stamp requests with");
    }
    checkKey(key);
    const body = buildSignBody({ requestId: newRequestID(this.#random), timestampMs: Math.floor(this.#now()), key, payload });
    const stamp = await createStamp(this.#signer, body);
    return { body, stamp };
  }

  /**
   * The signing keys (GET /v1/keys).
   * @param {import("../index.js").CallOptions} [opts]
   * @returns {Promise<import("../index.js").Key[]>}
   */
  async keys(opts = {}) {
    const { json } = await this.#send("GET", "/v1/keys", { signal: opts.signal });
    if (json === null || typeof json !== "object" || !Array.isArray(json.keys)) {
      throw new NitrosignError("nitrosign: GET /v1/keys: the answer has no keys list", { status: 200 });
    }
    for (const k of json.keys) {
      if (k === null || typeof k !== "object" || typeof k.id !== "string" || !isAddress(k.address)) {
        throw new NitrosignError("nitrosign: GET /v1/keys: a key lacks an id or address", { status: 200 });
      }
    }
    return json.keys;
  }

  /**
   * The state of the host and the enclave (GET /v1/health, the liveness
   * probe). A degraded service answers status "degraded" with the reason
   * in error (a host from before /v1/ready answered 503, thrown as a
   * NitrosignError).
   * @param {import("../index.js").CallOptions} [opts]
   * @returns {Promise<import("../index.js").HealthResponse>}
   */
  async health(opts = {}) {
    const { json } = await this.#send("GET", "/v1/health", { signal: opts.signal });
    return json;
  }

  /**
   * The state of a request waiting for approvals (GET /v1/approvals/{id}).
   * An unknown or expired id is a NitrosignError with code not_found.
   * @param {string} approvalId
   * @param {import("../index.js").CallOptions} [opts]
   * @returns {Promise<import("../index.js").PendingApproval>}
   */
  async approval(approvalId, opts = {}) {
    if (typeof approvalId !== "string" || approvalId.length < 1 || approvalId.length > MAX_APPROVAL_ID_LENGTH || !/^[A-Za-z0-9._:-]+$/.test(approvalId)) {
      throw new Error(`nitrosign: approval id: want 1 to ${MAX_APPROVAL_ID_LENGTH} characters of [A-Za-z0-9._:-]`);
    }
    const { json } = await this.#send("GET", `/v1/approvals/${approvalId}`, { signal: opts.signal });
    if (json === null || typeof json !== "object" || json.approval_id !== approvalId || typeof json.status !== "string") {
      throw new NitrosignError(`nitrosign: GET /v1/approvals/${approvalId}: the answer is not about that approval`, { status: 200 });
    }
    return json;
  }

  /**
   * Polls a request waiting for approvals until it is signed, and returns
   * the signature. It throws a NitrosignError with code approval_rejected
   * when an approver rejected it, not_found once it expired, and a
   * PendingApprovalError when timeoutMs passes first.
   * @param {string} approvalId
   * @param {{ timeoutMs?: number, intervalMs?: number, signal?: AbortSignal }} [opts]
   * @returns {Promise<import("../index.js").SignResponse>}
   */
  async waitForApproval(approvalId, opts = {}) {
    const timeoutMs = opts.timeoutMs ?? this.#approvalTimeoutMs;
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) {
      throw new RangeError("nitrosign: waitForApproval: timeoutMs must be a positive number of milliseconds");
    }
    return this.#wait(approvalId, timeoutMs, opts.signal, null, null, opts.intervalMs);
  }

  /**
   * @param {string} id
   * @param {number} timeoutMs
   * @param {AbortSignal | undefined} signal
   * @param {import("../index.js").PendingApproval | null} pending
   * @param {Uint8Array | null} body
   * @param {number} [intervalMs]
   */
  async #wait(id, timeoutMs, signal, pending, body, intervalMs) {
    const interval = Math.max(MIN_APPROVAL_POLL_INTERVAL_MS, intervalMs ?? this.#approvalPollIntervalMs);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      let p;
      try {
        p = await this.approval(id, { signal });
      } catch (err) {
        if (err instanceof NitrosignError && err.code === "not_found") {
          throw new NitrosignError(`nitrosign: approval ${id} expired or is unknown: ${err.message}`, { status: err.status, code: err.code, rule: err.rule, approvalId: id, cause: err });
        }
        throw err;
      }
      switch (p.status) {
        case "signed":
          if (p.result == null) {
            throw new NitrosignError(`nitrosign: approval ${id} is signed, but the answer carries no result`, { status: 200, approvalId: id });
          }
          return checkSignResponse(p.result, `GET /v1/approvals/${id}`);
        case "rejected":
          throw new NitrosignError(`nitrosign: approval ${id}: an approver rejected the request`, { code: "approval_rejected", rule: "approvals", approvalId: id });
        case "expired":
          throw new NitrosignError(`nitrosign: approval ${id}: the request expired before it was approved`, { code: "not_found", approvalId: id });
        case "pending_approval":
          break;
        default:
          throw new NitrosignError(`nitrosign: approval ${id}: unknown status ${JSON.stringify(p.status)}`, { status: 200, approvalId: id });
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        const latest = pending ?? p;
        const sent = body ?? new TextEncoder().encode(typeof p.request === "string" ? p.request : "");
        throw new PendingApprovalError({ ...latest, approvals: p.approvals ?? latest.approvals }, sent, `not approved within ${timeoutMs} ms`);
      }
      await sleep(Math.min(interval, left), undefined, { signal });
    }
  }

  /**
   * Sends one request and reads its answer: a 200 (or, with accept202, a
   * 202) as JSON, anything else as a NitrosignError.
   * @param {"GET" | "POST"} method
   * @param {string} path
   * @param {{ body?: Uint8Array, stamp?: string, accept202?: boolean, signal?: AbortSignal }} r
   * @returns {Promise<{ status: number, json: any }>}
   */
  async #send(method, path, { body, stamp, accept202 = false, signal }) {
    const what = `${method} ${path}`;
    const url = new URL(this.#base.pathname.replace(/\/$/, "") + path, this.#base);
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    if (stamp !== undefined) {
      headers[STAMP_HEADER] = stamp;
    }
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signals = signal ? AbortSignal.any([signal, timeout]) : timeout;
    let res;
    let data;
    try {
      // redirect "manual": a stamp goes only to the host addressed, and a
      // redirect is answered as an error below.
      res = await this.#fetch(url, { method, headers, body: /** @type {any} */ (body), redirect: "manual", signal: signals });
      data = await readCapped(res, this.#maxResponseBytes, what);
    } catch (err) {
      if (signal?.aborted) {
        throw signal.reason;
      }
      if (err instanceof NitrosignError) {
        throw err;
      }
      if (timeout.aborted) {
        throw new NitrosignError(`nitrosign: ${what}: no answer within ${this.#timeoutMs} ms`, { cause: err });
      }
      const reason = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      throw new NitrosignError(`nitrosign: ${what}: ${reason}`, { cause: err });
    }
    const status = res.status;
    if (status === 200 || (status === 202 && accept202)) {
      try {
        return { status, json: JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data)) };
      } catch (err) {
        throw new NitrosignError(`nitrosign: ${what}: the answer is not JSON`, { status, cause: err });
      }
    }
    if (status >= 200 && status < 300) {
      throw new NitrosignError(`nitrosign: ${what}: unexpected status ${status}, which this client does not handle`, { status });
    }
    let apiError = null;
    try {
      const parsed = JSON.parse(new TextDecoder().decode(data));
      if (parsed && typeof parsed.error === "object" && parsed.error !== null && typeof parsed.error.code === "string" && parsed.error.code !== "") {
        apiError = parsed.error;
      }
    } catch {
      // not a nitrosign error answer
    }
    if (apiError === null) {
      throw new NitrosignError(`nitrosign: ${what}: HTTP ${status}, not a nitrosign error answer`, { status });
    }
    const rule = typeof apiError.rule === "string" ? apiError.rule : "";
    const message = typeof apiError.message === "string" ? apiError.message : "";
    throw new NitrosignError(`nitrosign: ${what}: HTTP ${status}: ${message} (${apiError.code}${rule ? `, rule ${rule}` : ""})`, {
      status,
      code: apiError.code,
      rule,
    });
  }
}

/**
 * @param {unknown} raw
 */
function parseBaseURL(raw) {
  let u;
  try {
    u = new URL(String(raw));
  } catch {
    throw new TypeError(`nitrosign: client: base URL ${JSON.stringify(raw)} is not a URL`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new TypeError(`nitrosign: client: base URL scheme ${JSON.stringify(u.protocol.slice(0, -1))}, want http or https`);
  }
  if (u.username !== "" || u.password !== "" || u.search !== "" || u.hash !== "") {
    throw new TypeError("nitrosign: client: base URL must have a host and no user info, query or fragment");
  }
  if (!u.pathname.endsWith("/")) {
    u.pathname += "/";
  }
  return u;
}

/**
 * @param {string} name
 * @param {number | undefined} v
 * @param {number} dflt
 */
function positive(name, v, dflt) {
  if (v === undefined) {
    return dflt;
  }
  if (!Number.isFinite(v) || v <= 0) {
    throw new RangeError(`nitrosign: client: ${name} must be a positive number`);
  }
  return v;
}

/**
 * Reads res's body, at most max bytes.
 * @param {Response} res
 * @param {number} max
 * @param {string} what
 */
async function readCapped(res, max, what) {
  if (res.body === null) {
    return new Uint8Array(0);
  }
  const reader = res.body.getReader();
  const chunks = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    n += value.length;
    if (n > max) {
      await reader.cancel();
      throw new NitrosignError(`nitrosign: ${what}: answer larger than ${max} bytes`, { status: res.status });
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** @param {unknown} a */
function isAddress(a) {
  return typeof a === "string" && /^0x[0-9a-fA-F]{40}$/.test(a);
}

/**
 * Checks a 200 answer to a sign request.
 * @param {any} r
 * @param {string} what
 * @returns {import("../index.js").SignResponse}
 */
function checkSignResponse(r, what) {
  if (r === null || typeof r !== "object" || !isAddress(r.from) || typeof r.signature !== "string") {
    throw new NitrosignError(`nitrosign: ${what}: the answer lacks from or signature`, { status: 200 });
  }
  parseEnclaveSignature(r.signature);
  for (const f of ["signed_transaction", "transaction_hash", "digest"]) {
    if (r[f] !== undefined && (typeof r[f] !== "string" || !/^0x(?:[0-9a-fA-F]{2})*$/.test(r[f]))) {
      throw new NitrosignError(`nitrosign: ${what}: the answer's ${f} is not hex`, { status: 200 });
    }
  }
  return r;
}

/**
 * Checks a 202 answer: a pending approval whose digest is the body's.
 * @param {any} p
 * @param {Uint8Array} body
 * @returns {import("../index.js").PendingApproval}
 */
function checkPending(p, body) {
  if (p === null || typeof p !== "object" || p.status !== "pending_approval" || typeof p.approval_id !== "string" || p.approval_id === "") {
    throw new NitrosignError("nitrosign: POST /v1/sign: a 202 answer that is not a pending approval", { status: 202 });
  }
  const want = approvalDigest(body);
  if (typeof p.digest !== "string" || p.digest.toLowerCase() !== want) {
    throw new NitrosignError(
      `nitrosign: POST /v1/sign: the host answered that approval ${p.approval_id} is pending, with approval digest ${JSON.stringify(p.digest)}, which is not the digest of the request sent (${want})`,
      { status: 202, approvalId: p.approval_id },
    );
  }
  return p;
}
