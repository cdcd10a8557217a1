// Type declarations of @nitrosign/client (hand-written; the package is plain
// JavaScript with JSDoc types and no build step). The ethers v6 Signer is
// declared in ethers.d.ts ("@nitrosign/client/ethers"), the viem Account in
// viem.d.ts ("@nitrosign/client/viem").

import type { KeyObject } from "node:crypto";

/** 0x-prefixed hex. */
export type Hex = `0x${string}`;

/**
 * What stamps request bodies: a client key registered in the enclave's
 * policy. parseStampKey makes one from a PKCS #8 PEM key; any object of this
 * shape works (a key in an HSM or KMS, say).
 */
export interface StampSigner {
  readonly scheme: "ed25519" | "p256";
  /** Ed25519: the raw 32-byte key; P-256: the 33-byte SEC 1 compressed point. */
  readonly publicKey: Uint8Array;
  /** Ed25519 over the exact bytes, or P-256 ECDSA (ASN.1 DER) over their SHA-256. */
  sign(body: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

export const STAMP_HEADER: "X-Nitrosign-Stamp";
export const MAX_STAMP_HEADER_SIZE: 1024;

/** Parses a PKCS #8 PEM ("PRIVATE KEY") Ed25519 or P-256 key, as `nitrosign dev` writes DATA-DIR/client.pem. */
export function parseStampKey(pem: string | Uint8Array): StampSigner;
/** A signer for a node:crypto private KeyObject (Ed25519 or P-256). */
export function stampSignerFromKeyObject(key: KeyObject): StampSigner;
/** A new key and its PKCS #8 PEM (tests and tools). */
export function generateStampKey(scheme: "ed25519" | "p256"): { signer: StampSigner; pem: string };
/** The X-Nitrosign-Stamp header value for the exact body bytes. */
export function createStamp(signer: StampSigner, body: Uint8Array): Promise<string>;
/** Verifies a stamp in the canonical form createStamp (and Go's stamp.Create) produce; throws on anything else. */
export function verifyStamp(header: string, body: Uint8Array): { scheme: "ed25519" | "p256"; publicKey: Uint8Array };

export const MAX_BODY_SIZE: number;
export const MAX_REQUEST_ID_LENGTH: 128;
export const MAX_KEY_LENGTH: 128;
export const MAX_PERSONAL_MESSAGE_SIZE: number;

/** Exactly one payload of a sign request; eth_typed_data is the document's compact JSON text. */
export type Payload =
  | { eth_transaction: { unsigned: string } }
  | { eth_personal_message: { message: string } }
  | { eth_typed_data: string };

/** The exact body of a POST /v1/sign request. */
export function buildSignBody(r: { requestId: string; timestampMs: number; key: string; payload: Payload }): Uint8Array;
/** A fresh request_id: 16 random bytes as 32 hex digits. */
export function newRequestID(random?: (n: number) => Uint8Array): string;
/** SHA-256("nitrosign approval digest v2\n" || SHA-256(compact(body))), as 0x-hex. */
export function approvalDigest(body: Uint8Array): Hex;
/** JSON text without whitespace outside strings (Go's json.Compact). */
export function compactJSON(text: string): string;

/** Reads the enclave's 65-byte signature (r || s || y-parity 0/1, low s) strictly. */
export function parseEnclaveSignature(sig: string): { r: Hex; s: Hex; yParity: 0 | 1 };
/** The enclave's signature with v = 27 or 28, as personal_sign and ecrecover expect. */
export function toRecoverableSignature(sig: string): Hex;

/** The 200 answer of POST /v1/sign (and the result of an approved request). */
export interface SignResponse {
  /** The signing key's address, EIP-55 checksummed. */
  from: string;
  /** r || s || y-parity (0 or 1), low s. */
  signature: Hex;
  /** Transactions: the signed transaction, ready to broadcast. */
  signed_transaction?: Hex;
  /** Transactions: its Keccak-256. */
  transaction_hash?: Hex;
  /** The 32-byte hash the enclave signed. */
  digest?: Hex;
  /** The sequence number of the decision's audit record. */
  audit_seq: number;
}

export interface SummaryLine {
  key: string;
  value: string;
  labels?: { at: number; end: number; text: string }[];
}

/** A request held for approvals: the 202 answer of POST /v1/sign, and GET /v1/approvals/{id}. */
export interface PendingApproval {
  status: "pending_approval" | "signed" | "rejected" | "expired";
  approval_id: string;
  digest: Hex;
  summary?: string;
  summary_lines?: SummaryLine[];
  quorum: number;
  approvals: string[];
  expires_at_ms: number;
  audit_seq: number;
  /** GET only: the client's body in its compact form. */
  request?: string;
  /** GET only, once signed. */
  result?: SignResponse;
}

export interface Key {
  id: string;
  address: string;
  path: string;
}

export interface HealthResponse {
  status: string;
  enclave?: {
    version: string;
    state?: string;
    keys: number;
    policy_version: number;
    audit_seq: number;
    started_at_ms: number;
  };
  error?: { code: string; rule?: string; message: string };
}

export interface NitrosignClientOptions {
  /** The host's base URL, http or https, such as "http://127.0.0.1:8420". */
  url: string;
  /** The client's stamping key: PKCS #8 PEM, a private KeyObject, or a StampSigner. Without it the client only reads. */
  stampKey?: string | Uint8Array | KeyObject | StampSigner;
  /** Each HTTP call's time limit (default 10 000 ms). */
  timeoutMs?: number;
  /** The largest answer read (default 1 MiB). */
  maxResponseBytes?: number;
  /** How long sign calls follow a request held for approvals before throwing PendingApprovalError (default 0: at once). */
  approvalTimeoutMs?: number;
  /** The interval between polls of a held request (default 1000 ms, at least 250). */
  approvalPollIntervalMs?: number;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** The clock of timestamp_ms (default Date.now). */
  now?: () => number;
  /** The random source of request ids (default node:crypto randomBytes). */
  randomBytes?: (n: number) => Uint8Array;
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Overrides the client's approvalTimeoutMs for this call. */
  approvalTimeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS: number;
export const DEFAULT_MAX_RESPONSE_BYTES: number;
export const DEFAULT_APPROVAL_POLL_INTERVAL_MS: number;
export const MIN_APPROVAL_POLL_INTERVAL_MS: number;

/** The REST client of nitrosign-host. It does not verify attestations (the agent does). */
export class NitrosignClient {
  constructor(options: NitrosignClientOptions);
  readonly url: string;
  readonly stampPublicKey: { scheme: "ed25519" | "p256"; publicKey: Uint8Array } | null;
  /** key: the key's id or address. unsigned: the EIP-2718 envelope without signature, or the EIP-155 legacy list. */
  signTransaction(key: string, unsigned: Uint8Array | string, opts?: CallOptions): Promise<SignResponse>;
  /** message: bytes (encode text with TextEncoder) or 0x-hex; 1 byte to 64 KiB. */
  signPersonalMessage(key: string, message: Uint8Array | string, opts?: CallOptions): Promise<SignResponse>;
  /** typedData: eth_signTypedData_v4 JSON, as an object or text. */
  signTypedData(key: string, typedData: string | object, opts?: CallOptions): Promise<SignResponse>;
  sign(key: string, payload: Payload, opts?: CallOptions): Promise<SignResponse>;
  /** The stamped body and header, not sent: send it once, within five minutes. */
  stampRequest(key: string, payload: Payload): Promise<{ body: Uint8Array; stamp: string }>;
  keys(opts?: { signal?: AbortSignal }): Promise<Key[]>;
  health(opts?: { signal?: AbortSignal }): Promise<HealthResponse>;
  approval(approvalId: string, opts?: { signal?: AbortSignal }): Promise<PendingApproval>;
  /** Polls until signed; NitrosignError approval_rejected or not_found, or PendingApprovalError after timeoutMs. */
  waitForApproval(approvalId: string, opts?: { timeoutMs?: number; intervalMs?: number; signal?: AbortSignal }): Promise<SignResponse>;
}

/** A refusal (code and rule from docs/api.md, "Refusals"), or no usable answer (code ""). */
export class NitrosignError extends Error {
  constructor(message: string, fields?: { status?: number; code?: string; rule?: string; approvalId?: string; cause?: unknown });
  /** The HTTP status, or 0 when no answer came. */
  readonly status: number;
  readonly code: string;
  readonly rule: string;
  readonly approvalId: string;
}

/** The request waits for approvals; not a refusal. */
export class PendingApprovalError extends Error {
  constructor(pending: PendingApproval, body: Uint8Array, why?: string);
  readonly approvalId: string;
  readonly digest: Hex;
  readonly quorum: number;
  readonly expiresAtMs: number;
  readonly pending: PendingApproval;
  /** The exact stamped body sent. */
  readonly body: Uint8Array;
}
