// Bodies of POST /v1/sign (docs/api.md, "POST /v1/sign"), built as the Go
// client builds them: a fresh request_id and timestamp_ms, the key, and
// exactly one payload. The body is built once, as bytes, and those bytes
// are stamped and sent: re-serialising after stamping would break the stamp.

import { randomBytes } from "node:crypto";
import { sha256 } from "./stamp.js";

/** The largest request body the enclave accepts, in bytes. */
export const MAX_BODY_SIZE = 256 << 10;
/** The longest request_id, in characters. */
export const MAX_REQUEST_ID_LENGTH = 128;
/** The longest key id, in characters. */
export const MAX_KEY_LENGTH = 128;
/** The longest personal message the enclave signs, in bytes. */
export const MAX_PERSONAL_MESSAGE_SIZE = 64 << 10;

const REQUEST_ID_BYTES = 16;
const APPROVAL_DIGEST_DOMAIN = "nitrosign approval digest v2\n";

/**
 * A fresh request_id: 16 random bytes as 32 hex digits.
 * @param {(n: number) => Uint8Array} [random]
 */
export function newRequestID(random = randomBytes) {
  const b = random(REQUEST_ID_BYTES);
  if (!(b instanceof Uint8Array) || b.length !== REQUEST_ID_BYTES) {
    throw new Error(`nitrosign: request_id: the random source returned no ${REQUEST_ID_BYTES} bytes`);
  }
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/**
 * Throws unless id is 1 to 128 characters of [A-Za-z0-9._:-].
 * @param {string} id
 */
export function checkRequestID(id) {
  if (typeof id !== "string" || id.length < 1 || id.length > MAX_REQUEST_ID_LENGTH || !/^[A-Za-z0-9._:-]+$/.test(id)) {
    throw new Error(`nitrosign: request_id: want 1 to ${MAX_REQUEST_ID_LENGTH} characters of [A-Za-z0-9._:-]`);
  }
}

/**
 * Throws unless key is a key id or address the API takes: 1 to 128
 * printable ASCII characters, no spaces.
 * @param {string} key
 */
export function checkKey(key) {
  if (typeof key !== "string" || key.length < 1 || key.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]+$/.test(key)) {
    throw new Error(`nitrosign: key: want 1 to ${MAX_KEY_LENGTH} printable ASCII characters without spaces (a key id or address)`);
  }
}

/**
 * Bytes to the API's hex form: "0x" and an even, non-zero number of
 * lower-case hex digits. A string must already be such hex (either case).
 * @param {string} field
 * @param {Uint8Array | string} data
 */
export function payloadHex(field, data) {
  if (typeof data === "string") {
    if (!/^0x(?:[0-9a-fA-F]{2})+$/.test(data)) {
      throw new Error(`nitrosign: ${field}: want "0x" and a non-empty, even number of hex digits`);
    }
    return "0x" + data.slice(2).toLowerCase();
  }
  if (!(data instanceof Uint8Array)) {
    throw new TypeError(`nitrosign: ${field}: want a Uint8Array or a 0x-prefixed hex string`);
  }
  if (data.length === 0) {
    throw new Error(`nitrosign: ${field}: empty`);
  }
  return "0x" + Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("hex");
}

/**
 * Returns JSON text with every whitespace outside strings removed, nothing
 * else changed (Go's json.Compact, the API's compact form). It throws on text
 * that is not one JSON value.
 * @param {string} text
 */
export function compactJSON(text) {
  JSON.parse(text); // throws a SyntaxError on anything that is not JSON
  let out = "";
  let start = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) {
        i++; // skip the escaped character
      } else if (c === 0x22) {
        inString = false;
      }
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) {
      out += text.slice(start, i);
      start = i + 1;
    }
  }
  return out + text.slice(start);
}

/**
 * The typed-data payload as compact JSON text: an object is serialised with
 * JSON.stringify (bigints as decimal strings), a string is checked to be one
 * JSON object and compacted, its members kept as written (so a uint256 beyond
 * 2^53 written as a number keeps its digits).
 * @param {string | object} typedData
 */
export function typedDataJSON(typedData) {
  let text;
  if (typeof typedData === "string") {
    text = compactJSON(typedData);
  } else if (typedData !== null && typeof typedData === "object" && !Array.isArray(typedData)) {
    text = JSON.stringify(typedData, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  } else {
    throw new TypeError("nitrosign: eth_typed_data: want a JSON object (eth_signTypedData_v4 form) or its text");
  }
  if (!text.startsWith("{")) {
    throw new Error("nitrosign: eth_typed_data: must be a JSON object");
  }
  return text;
}

/**
 * @typedef {{ eth_transaction: { unsigned: string } } | { eth_personal_message: { message: string } } | { eth_typed_data: string }} Payload
 */

/**
 * Builds the exact body of a POST /v1/sign request.
 * @param {{ requestId: string, timestampMs: number, key: string, payload: Payload }} r
 * @returns {Uint8Array}
 */
export function buildSignBody({ requestId, timestampMs, key, payload }) {
  checkRequestID(requestId);
  if (!Number.isSafeInteger(timestampMs) || timestampMs <= 0) {
    throw new Error("nitrosign: timestamp_ms: want positive Unix milliseconds");
  }
  checkKey(key);
  const head = JSON.stringify({ request_id: requestId, timestamp_ms: timestampMs, key }).slice(0, -1);
  const names = Object.keys(payload);
  if (names.length !== 1) {
    throw new Error("nitrosign: exactly one payload required (eth_transaction, eth_typed_data, eth_personal_message)");
  }
  let tail;
  if ("eth_transaction" in payload) {
    tail = `,"eth_transaction":${JSON.stringify({ unsigned: payload.eth_transaction.unsigned })}}`;
  } else if ("eth_personal_message" in payload) {
    tail = `,"eth_personal_message":${JSON.stringify({ message: payload.eth_personal_message.message })}}`;
  } else if ("eth_typed_data" in payload) {
    tail = `,"eth_typed_data":${payload.eth_typed_data}}`;
  } else {
    throw new Error(`nitrosign: unknown payload ${JSON.stringify(names[0])}`);
  }
  const body = new TextEncoder().encode(head + tail);
  if (body.length > MAX_BODY_SIZE) {
    throw new Error(`nitrosign: request body is ${body.length} bytes, limit ${MAX_BODY_SIZE}`);
  }
  return body;
}

/**
 * The approval digest of a request body, as the enclave computes it
 * (api.ApprovalDigest): SHA-256("nitrosign approval digest v2\n" ||
 * SHA-256(compact(body))), as 0x-prefixed hex.
 * @param {Uint8Array} body
 */
export function approvalDigest(body) {
  let compact = body;
  try {
    compact = new TextEncoder().encode(compactJSON(new TextDecoder("utf-8", { fatal: true }).decode(body)));
  } catch {
    // Not JSON: digested as it is, as the Go side does.
  }
  const inner = sha256(compact);
  return "0x" + sha256(Buffer.concat([Buffer.from(APPROVAL_DIGEST_DOMAIN), inner])).toString("hex");
}
