// The enclave's answers carry 65-byte signatures r || s || y-parity, the
// parity 0 or 1 (docs/api.md, "POST /v1/sign"). Wallets and on-chain
// ecrecover expect v = 27 or 28 for messages and typed data: these helpers
// read the answer's form strictly and convert it.

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/**
 * Parses the enclave's signature: "0x" and 130 hex digits, r and s in
 * [1, n/2] (low-s, EIP-2), y-parity 0 or 1.
 * @param {string} sig
 * @returns {{ r: `0x${string}`, s: `0x${string}`, yParity: 0 | 1 }}
 */
export function parseEnclaveSignature(sig) {
  if (typeof sig !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(sig)) {
    throw new Error("nitrosign: the answer's signature is not 0x and 65 bytes of hex");
  }
  const r = BigInt("0x" + sig.slice(2, 66));
  const s = BigInt("0x" + sig.slice(66, 130));
  const v = Number.parseInt(sig.slice(130, 132), 16);
  if (r === 0n || r >= SECP256K1_N || s === 0n || s > SECP256K1_N / 2n) {
    throw new Error("nitrosign: the answer's signature has r or s out of range (or a high s)");
  }
  if (v !== 0 && v !== 1) {
    throw new Error(`nitrosign: the answer's signature ends in ${v}, want a y-parity of 0 or 1`);
  }
  return {
    r: /** @type {`0x${string}`} */ ("0x" + sig.slice(2, 66).toLowerCase()),
    s: /** @type {`0x${string}`} */ ("0x" + sig.slice(66, 130).toLowerCase()),
    yParity: /** @type {0 | 1} */ (v),
  };
}

/**
 * The enclave's signature with v = 27 or 28, as eth_sign, personal_sign and
 * eth_signTypedData_v4 return it and ecrecover takes it.
 * @param {string} sig
 * @returns {`0x${string}`}
 */
export function toRecoverableSignature(sig) {
  const { r, s, yParity } = parseEnclaveSignature(sig);
  return `0x${r.slice(2)}${s.slice(2)}${yParity === 0 ? "1b" : "1c"}`;
}
