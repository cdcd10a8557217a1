// Request stamps: the X-Nitrosign-Stamp header that authenticates a request
// body to the enclave (docs/api.md, "Request stamps"; Go package stamp).
//
// A stamp is base64url without padding of the JSON object
// {"scheme","public_key","signature"}: Ed25519 over the exact body bytes, or
// P-256 ECDSA (ASN.1 DER) over SHA-256 of them. The host forwards the body
// and the header unchanged, and the enclave verifies the stamp against the
// clients its policy registers: whoever holds the key can ask for
// signatures, so keep it where only the signing service reads it.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";

/** The HTTP header that carries a stamp. */
export const STAMP_HEADER = "X-Nitrosign-Stamp";

/** The largest stamp header the enclave accepts, in bytes. */
export const MAX_STAMP_HEADER_SIZE = 1024;

const ED25519_KEY_SIZE = 32;
const ED25519_SIG_SIZE = 64;
const P256_KEY_SIZE = 33; // SEC 1 compressed point
const P256_MIN_SIG_SIZE = 8; // SEQUENCE { INTEGER 1 byte, INTEGER 1 byte }
const P256_MAX_SIG_SIZE = 72; // SEQUENCE { INTEGER 33 bytes, INTEGER 33 bytes }

/** The largest PEM text parseStampKey reads: a PKCS #8 Ed25519 or P-256 key is a few hundred bytes. */
const MAX_PEM_SIZE = 16 << 10;

/**
 * A stamp signer backed by a node:crypto private key. Its key never leaves
 * the object: it is not enumerable, and neither toJSON nor inspection shows it.
 */
class KeyObjectSigner {
  /** @type {import("node:crypto").KeyObject} */
  #key;

  /**
   * @param {import("node:crypto").KeyObject} key
   * @param {"ed25519" | "p256"} scheme
   * @param {Uint8Array} publicKey
   */
  constructor(key, scheme, publicKey) {
    this.#key = key;
    /** @readonly */
    this.scheme = scheme;
    /** @readonly */
    this.publicKey = publicKey;
    Object.freeze(this);
  }

  /**
   * Signs the exact body bytes.
   * @param {Uint8Array} body
   * @returns {Uint8Array}
   */
  sign(body) {
    if (this.scheme === "ed25519") {
      return new Uint8Array(sign(null, body, this.#key));
    }
    return new Uint8Array(sign("sha256", body, { key: this.#key, dsaEncoding: "der" }));
  }

  toJSON() {
    return { scheme: this.scheme, public_key: toHex(this.publicKey) };
  }

  [Symbol.for("nodejs.util.inspect.custom")]() {
    return `StampSigner(${this.scheme}:${toHex(this.publicKey)})`;
  }
}

/**
 * Returns a stamp signer for a node:crypto private KeyObject: Ed25519, or
 * ECDSA on P-256.
 * @param {import("node:crypto").KeyObject} key
 * @returns {import("../index.js").StampSigner}
 */
export function stampSignerFromKeyObject(key) {
  if (key === null || typeof key !== "object" || key.type !== "private") {
    throw new TypeError("nitrosign: stamp key: want a private KeyObject");
  }
  const pub = createPublicKey(key).export({ format: "jwk" });
  if (key.asymmetricKeyType === "ed25519") {
    const raw = fromBase64url(String(pub.x));
    if (raw.length !== ED25519_KEY_SIZE) {
      throw new Error("nitrosign: stamp key: invalid ed25519 public key");
    }
    return new KeyObjectSigner(key, "ed25519", raw);
  }
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve !== "prime256v1" || pub.crv !== "P-256") {
      throw new Error(`nitrosign: stamp key: ecdsa curve ${JSON.stringify(curve)}, want P-256`);
    }
    const x = fromBase64url(String(pub.x));
    const y = fromBase64url(String(pub.y));
    if (x.length !== 32 || y.length !== 32) {
      throw new Error("nitrosign: stamp key: invalid p256 public key");
    }
    const compressed = new Uint8Array(P256_KEY_SIZE);
    compressed[0] = 0x02 | (y[31] & 1);
    compressed.set(x, 1);
    return new KeyObjectSigner(key, "p256", compressed);
  }
  throw new Error(`nitrosign: stamp key: unsupported key type ${JSON.stringify(key.asymmetricKeyType)}, want Ed25519 or ECDSA P-256`);
}

/**
 * Parses a client's private key, a PKCS #8 PEM block ("PRIVATE KEY") of an
 * Ed25519 or P-256 key, as `nitrosign dev` writes DATA-DIR/client.pem and
 * Go's stamp.ParseSignerPEM reads it: one block, nothing after it, no PEM
 * headers (encrypted keys are refused). Errors never quote the key.
 * @param {string | Uint8Array} pem
 * @returns {import("../index.js").StampSigner}
 */
export function parseStampKey(pem) {
  let text = pem;
  if (text instanceof Uint8Array) {
    if (text.length > MAX_PEM_SIZE) {
      throw new Error(`nitrosign: stamp key: ${text.length} bytes, limit ${MAX_PEM_SIZE}`);
    }
    text = new TextDecoder("utf-8", { fatal: true }).decode(text);
  }
  if (typeof text !== "string") {
    throw new TypeError("nitrosign: stamp key: want PEM text");
  }
  if (text.length > MAX_PEM_SIZE) {
    throw new Error(`nitrosign: stamp key: ${text.length} characters, limit ${MAX_PEM_SIZE}`);
  }
  text = text.trim();
  const m = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n-----END \1-----$/.exec(text);
  if (!text.startsWith("-----BEGIN ")) {
    throw new Error("nitrosign: stamp key: no PEM block at the start of the input");
  }
  if (m === null) {
    if (/^-----BEGIN [A-Z0-9 ]+-----\r?\n[A-Za-z-]+:/.test(text)) {
      throw new Error("nitrosign: stamp key: PEM headers are not supported (encrypted keys are refused)");
    }
    throw new Error("nitrosign: stamp key: invalid PEM, or data after the PEM block");
  }
  if (m[1] !== "PRIVATE KEY") {
    throw new Error(`nitrosign: stamp key: PEM block type ${JSON.stringify(m[1])}, want "PRIVATE KEY" (PKCS #8; convert with openssl pkcs8 -topk8 -nocrypt)`);
  }
  let key;
  try {
    key = createPrivateKey({ key: text, format: "pem" });
  } catch {
    // node's error is not passed on: it could describe the key's bytes.
    throw new Error("nitrosign: stamp key: not a valid PKCS #8 key");
  }
  return stampSignerFromKeyObject(key);
}

/**
 * Generates a new stamp key (for tests and tools; a client's key is
 * registered in the enclave's policy before it can sign anything).
 * @param {"ed25519" | "p256"} scheme
 * @returns {{ signer: import("../index.js").StampSigner, pem: string }}
 */
export function generateStampKey(scheme) {
  let pair;
  if (scheme === "ed25519") {
    pair = generateKeyPairSync("ed25519");
  } else if (scheme === "p256") {
    pair = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  } else {
    throw new Error(`nitrosign: unknown stamp scheme ${JSON.stringify(scheme)}, want "ed25519" or "p256"`);
  }
  const pem = String(pair.privateKey.export({ format: "pem", type: "pkcs8" }));
  return { signer: stampSignerFromKeyObject(pair.privateKey), pem };
}

/**
 * Stamps body (the exact bytes that will be sent) with signer and returns
 * the X-Nitrosign-Stamp header value. The signer's signature is checked
 * before it is used, so a faulty signer (a remote key, an HSM) is caught
 * here rather than by the enclave.
 * @param {import("../index.js").StampSigner} signer
 * @param {Uint8Array} body
 * @returns {Promise<string>}
 */
export async function createStamp(signer, body) {
  if (signer === null || typeof signer !== "object" || typeof signer.sign !== "function") {
    throw new TypeError("nitrosign: stamp: want a signer with scheme, publicKey and sign(body)");
  }
  if (!(body instanceof Uint8Array)) {
    throw new TypeError("nitrosign: stamp: the body must be a Uint8Array (the exact bytes sent)");
  }
  const { scheme, publicKey } = signer;
  const wantKey = scheme === "ed25519" ? ED25519_KEY_SIZE : scheme === "p256" ? P256_KEY_SIZE : -1;
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== wantKey) {
    throw new Error(`nitrosign: stamp: signer has an invalid public key (scheme ${JSON.stringify(scheme)})`);
  }
  const sig = await signer.sign(body);
  if (!(sig instanceof Uint8Array)) {
    throw new Error("nitrosign: stamp: the signer returned no signature bytes");
  }
  checkSigSize(scheme, sig.length);
  if (!verifySignature(scheme, publicKey, body, sig)) {
    throw new Error("nitrosign: stamp: the signer produced a signature that does not verify under its own public key");
  }
  const js = JSON.stringify({ scheme, public_key: toHex(publicKey), signature: toHex(sig) });
  return Buffer.from(js, "utf8").toString("base64url");
}

/**
 * Verifies a stamp header over body and returns the client's public key.
 * It reads only the canonical form createStamp and Go's stamp.Create
 * produce (unpadded base64url of exactly {"scheme","public_key","signature"}
 * in that order, no whitespace, lower-case hex), which is stricter than the
 * enclave (which also takes other member orders and upper-case hex): a
 * client checking its own stamps needs no more. It throws, naming what is
 * wrong, on anything else.
 * @param {string} header
 * @param {Uint8Array} body
 * @returns {{ scheme: "ed25519" | "p256", publicKey: Uint8Array }}
 */
export function verifyStamp(header, body) {
  if (typeof header !== "string" || header === "") {
    throw new Error("nitrosign: stamp: missing stamp");
  }
  if (header.length > MAX_STAMP_HEADER_SIZE) {
    throw new Error(`nitrosign: stamp: malformed stamp: header is ${header.length} bytes, limit ${MAX_STAMP_HEADER_SIZE}`);
  }
  if (!/^[A-Za-z0-9_-]*$/.test(header) || header.length % 4 === 1) {
    throw new Error("nitrosign: stamp: malformed stamp: not unpadded base64url");
  }
  const raw = Buffer.from(header, "base64url");
  if (raw.toString("base64url") !== header) {
    throw new Error("nitrosign: stamp: malformed stamp: not canonical unpadded base64url");
  }
  let js;
  try {
    js = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw new Error("nitrosign: stamp: malformed stamp: not UTF-8");
  }
  const m = /^\{"scheme":"(ed25519|p256)","public_key":"([0-9a-f]*)","signature":"([0-9a-f]*)"\}$/.exec(js);
  if (m === null) {
    throw new Error('nitrosign: stamp: malformed stamp: want exactly {"scheme","public_key","signature"} with scheme ed25519 or p256 and lower-case hex');
  }
  const scheme = /** @type {"ed25519" | "p256"} */ (m[1]);
  const publicKey = decodeHexField("public_key", m[2]);
  const sig = decodeHexField("signature", m[3]);
  const wantKey = scheme === "ed25519" ? ED25519_KEY_SIZE : P256_KEY_SIZE;
  if (publicKey.length !== wantKey) {
    throw new Error(`nitrosign: stamp: malformed stamp: public_key is ${publicKey.length} bytes, want ${wantKey}`);
  }
  checkSigSize(scheme, sig.length);
  if (scheme === "p256" && publicKey[0] !== 0x02 && publicKey[0] !== 0x03) {
    throw new Error("nitrosign: stamp: malformed stamp: public_key: p256 key must be a compressed point (prefix 02 or 03)");
  }
  if (!verifySignature(scheme, publicKey, body, sig)) {
    throw new Error(`nitrosign: stamp: signature does not verify (key ${scheme}:${m[2]})`);
  }
  return { scheme, publicKey };
}

/**
 * @param {string} scheme
 * @param {number} n
 */
function checkSigSize(scheme, n) {
  if (scheme === "ed25519" && n !== ED25519_SIG_SIZE) {
    throw new Error(`nitrosign: stamp: ed25519 signature is ${n} bytes, want ${ED25519_SIG_SIZE}`);
  }
  if (scheme === "p256" && (n < P256_MIN_SIG_SIZE || n > P256_MAX_SIG_SIZE)) {
    throw new Error(`nitrosign: stamp: p256 signature is ${n} bytes, want ${P256_MIN_SIG_SIZE} to ${P256_MAX_SIG_SIZE}`);
  }
}

/**
 * @param {string} field
 * @param {string} hex lower-case hex digits
 */
function decodeHexField(field, hex) {
  if (hex.length === 0) {
    throw new Error(`nitrosign: stamp: malformed stamp: ${field} is missing or empty`);
  }
  if (hex.length % 2 !== 0) {
    throw new Error(`nitrosign: stamp: malformed stamp: ${field}: odd number of hex digits (${hex.length})`);
  }
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/**
 * Verifies sig over body under the raw public key of scheme; false for a
 * key that is not a point of the curve.
 * @param {string} scheme
 * @param {Uint8Array} publicKey
 * @param {Uint8Array} body
 * @param {Uint8Array} sig
 */
function verifySignature(scheme, publicKey, body, sig) {
  try {
    if (scheme === "ed25519") {
      const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") }, format: "jwk" });
      return verify(null, body, key, sig);
    }
    // SubjectPublicKeyInfo of a compressed P-256 point: node decompresses
    // it and refuses a point that is not on the curve.
    const spki = Buffer.concat([Buffer.from("3039301306072a8648ce3d020106082a8648ce3d030107032200", "hex"), publicKey]);
    const key = createPublicKey({ key: spki, format: "der", type: "spki" });
    return verify("sha256", body, { key, dsaEncoding: "der" }, sig);
  } catch {
    return false;
  }
}

/** @param {string} s */
function fromBase64url(s) {
  return new Uint8Array(Buffer.from(s, "base64url"));
}

/** @param {Uint8Array} b */
export function toHex(b) {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

/**
 * SHA-256 of bytes.
 * @param {Uint8Array | string} data
 * @returns {Buffer}
 */
export function sha256(data) {
  return createHash("sha256").update(data).digest();
}
