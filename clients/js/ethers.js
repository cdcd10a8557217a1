// An ethers v6 Signer backed by nitrosign's REST API.
//
// NitrosignSigner signs transactions, personal messages and EIP-712 typed
// data through the enclave and checks each signature before returning it:
// it must recover to the signer's address (ethers.verifyMessage,
// ethers.verifyTypedData, and the signed transaction's from). It does not
// verify the enclave's attestation; the agent (`nitrosign agent`) does.

import {
  AbstractSigner,
  Signature,
  Transaction,
  TypedDataEncoder,
  copyRequest,
  getAddress,
  getBytes,
  hashMessage,
  resolveAddress,
  toUtf8Bytes,
  verifyMessage,
  verifyTypedData,
} from "ethers";
import { NitrosignClient } from "./src/client.js";
import { NitrosignError } from "./src/errors.js";
import { parseEnclaveSignature } from "./src/signature.js";

export class NitrosignSigner extends AbstractSigner {
  /**
   * @param {NitrosignClient} client
   * @param {{ address: string, key?: string }} account the key's address, and
   *   its id (default: the address, which the API accepts as a key)
   * @param {import("ethers").Provider | null} [provider]
   */
  constructor(client, account, provider = null) {
    super(provider);
    if (!(client instanceof NitrosignClient)) {
      throw new TypeError("nitrosign: NitrosignSigner: want a NitrosignClient");
    }
    if (account === null || typeof account !== "object") {
      throw new TypeError("nitrosign: NitrosignSigner: want { address, key? }");
    }
    /** @readonly */
    this.client = client;
    /** @readonly The key's checksummed address. */
    this.address = getAddress(account.address);
    /** @readonly The key id or address the requests name. */
    this.key = account.key ?? this.address;
  }

  /**
   * A signer for the key with id (or address) key, its address looked up
   * with GET /v1/keys.
   * @param {NitrosignClient} client
   * @param {string} key
   * @param {import("ethers").Provider | null} [provider]
   */
  static async fromKey(client, key, provider = null) {
    const keys = await client.keys();
    const k = keys.find((k) => k.id === key || k.address.toLowerCase() === key.toLowerCase());
    if (k === undefined) {
      throw new NitrosignError(`nitrosign: no signing key ${JSON.stringify(key)} (GET /v1/keys lists ${keys.map((k) => k.id).join(", ") || "none"})`, { code: "unknown_key" });
    }
    return new NitrosignSigner(client, { address: k.address, key: k.id }, provider);
  }

  async getAddress() {
    return this.address;
  }

  /** @param {import("ethers").Provider | null} provider */
  connect(provider) {
    return new NitrosignSigner(this.client, { address: this.address, key: this.key }, provider);
  }

  /**
   * Signs a transaction through the enclave and returns it serialized. With
   * a provider, missing fields are filled in first (nonce, gas, fees, chain
   * id: populateTransaction); without one, the request must be complete.
   * @param {import("ethers").TransactionRequest} tx
   * @returns {Promise<string>}
   */
  async signTransaction(tx) {
    /** @type {any} */
    let req = tx instanceof Transaction ? tx : copyRequest(tx);
    if (!(tx instanceof Transaction) && this.provider !== null) {
      req = await this.populateTransaction(req);
    }
    // As ethers' Wallet: ENS names and Addressables resolved, from checked
    // and dropped.
    const fields = copyRequest(req);
    if (fields.to != null) {
      fields.to = await resolveAddress(fields.to, this);
    }
    if (fields.from != null) {
      const from = await resolveAddress(fields.from, this);
      if (getAddress(from) !== this.address) {
        throw new Error(`nitrosign: transaction from ${from} is not the signer's address ${this.address}`);
      }
    }
    delete fields.from;
    const btx = Transaction.from(/** @type {any} */ (fields));
    if (btx.type === 0 && btx.chainId === 0n) {
      throw new Error("nitrosign: a legacy transaction needs a chainId (EIP-155): the enclave refuses replayable pre-EIP-155 transactions");
    }
    const unsigned = btx.unsignedSerialized;
    const resp = await this.client.signTransaction(this.key, unsigned);
    if (resp.digest !== undefined && resp.digest.toLowerCase() !== btx.unsignedHash) {
      throw new Error(`nitrosign: the enclave signed digest ${resp.digest}, not the transaction's signing hash ${btx.unsignedHash}`);
    }
    const { r, s, yParity } = parseEnclaveSignature(resp.signature);
    btx.signature = Signature.from({ r, s, yParity });
    if (btx.from !== this.address) {
      throw new Error(`nitrosign: the transaction's signature recovers ${btx.from}, not the signer's address ${this.address}`);
    }
    if (typeof resp.signed_transaction !== "string") {
      throw new Error("nitrosign: the answer carries no signed_transaction");
    }
    const signed = Transaction.from(resp.signed_transaction);
    if (signed.from !== this.address || signed.unsignedSerialized !== unsigned || signed.hash !== btx.hash) {
      throw new Error("nitrosign: the enclave's signed_transaction is not the transaction asked for, signed by the signer's key");
    }
    // btx.serialized is the enclave's signed_transaction, except for a blob
    // transaction with its blobs set, for which it is the network form.
    return btx.serialized;
  }

  /**
   * Signs an EIP-191 personal message (a string is signed as its UTF-8
   * bytes) and returns the 65-byte signature with v = 27 or 28.
   * @param {string | Uint8Array} message
   * @returns {Promise<string>}
   */
  async signMessage(message) {
    const bytes = typeof message === "string" ? toUtf8Bytes(message) : getBytes(message);
    const resp = await this.client.signPersonalMessage(this.key, bytes);
    if (resp.digest !== undefined && resp.digest.toLowerCase() !== hashMessage(bytes)) {
      throw new Error(`nitrosign: the enclave signed digest ${resp.digest}, not the message's EIP-191 hash`);
    }
    const sig = Signature.from(parseEnclaveSignature(resp.signature)).serialized;
    const got = verifyMessage(bytes, sig);
    if (got !== this.address) {
      throw new Error(`nitrosign: the message signature recovers ${got}, not the signer's address ${this.address}`);
    }
    return sig;
  }

  /**
   * Signs EIP-712 typed data and returns the 65-byte signature with v = 27
   * or 28. The request carries the eth_signTypedData_v4 JSON ethers'
   * JsonRpcSigner sends (TypedDataEncoder.getPayload: the EIP712Domain type
   * made of the domain's present members). ENS names in address fields are
   * resolved through the provider.
   * @param {import("ethers").TypedDataDomain} domain
   * @param {Record<string, import("ethers").TypedDataField[]>} types
   * @param {Record<string, any>} value
   * @returns {Promise<string>}
   */
  async signTypedData(domain, types, value) {
    const populated = await TypedDataEncoder.resolveNames(domain, types, value, async (name) => {
      const address = await resolveAddress(name, this.provider);
      if (address == null) {
        throw new Error(`nitrosign: typed data: ${name} does not resolve to an address`);
      }
      return address;
    });
    const payload = TypedDataEncoder.getPayload(populated.domain, types, populated.value);
    const resp = await this.client.signTypedData(this.key, JSON.stringify(payload));
    const digest = TypedDataEncoder.hash(populated.domain, types, populated.value);
    if (resp.digest !== undefined && resp.digest.toLowerCase() !== digest) {
      throw new Error(`nitrosign: the enclave signed digest ${resp.digest}, not the typed data's EIP-712 hash ${digest}`);
    }
    const sig = Signature.from(parseEnclaveSignature(resp.signature)).serialized;
    const got = verifyTypedData(populated.domain, types, populated.value, sig);
    if (got !== this.address) {
      throw new Error(`nitrosign: the typed-data signature recovers ${got}, not the signer's address ${this.address}`);
    }
    return sig;
  }
}
