// A viem Account backed by nitrosign's REST API.
//
// nitrosignAccount returns a local (custom) account, made with viem's
// toAccount, that signs transactions, personal messages and EIP-712 typed
// data through the enclave, and checks each signature before returning it:
// it must recover to the account's address (viem's recoverAddress,
// recoverMessageAddress, recoverTypedDataAddress). Use it as any local
// account: createWalletClient({ account, chain, transport }). It does not
// verify the enclave's attestation; the agent (`nitrosign agent`) does.

import {
  getAddress,
  getTypesForEIP712Domain,
  hashMessage,
  hashTypedData,
  hexToBytes,
  isAddressEqual,
  isHex,
  keccak256,
  recoverAddress,
  recoverMessageAddress,
  recoverTypedDataAddress,
  serializeSignature,
  serializeTransaction,
  serializeTypedData,
  stringToBytes,
  validateTypedData,
} from "viem";
import { toAccount } from "viem/accounts";
import { NitrosignClient } from "./src/client.js";
import { NitrosignError } from "./src/errors.js";
import { parseEnclaveSignature } from "./src/signature.js";

/**
 * A viem Account for the enclave's key at address.
 * @param {{ client: NitrosignClient, address: string, key?: string }} options
 *   key is the key id the requests name (default: the address, which the
 *   API accepts as a key)
 * @returns {import("viem").LocalAccount<"custom">}
 */
export function nitrosignAccount({ client, address, key }) {
  if (!(client instanceof NitrosignClient)) {
    throw new TypeError("nitrosign: nitrosignAccount: want a NitrosignClient");
  }
  const addr = getAddress(address);
  const keyRef = key ?? addr;

  /**
   * @param {`0x${string}`} hash
   * @param {{ digest?: string, signature: string }} resp
   * @param {string} what
   */
  const checkDigest = (hash, resp, what) => {
    if (resp.digest !== undefined && resp.digest.toLowerCase() !== hash.toLowerCase()) {
      throw new Error(`nitrosign: the enclave signed digest ${resp.digest}, not the ${what} ${hash}`);
    }
  };
  /**
   * @param {string} got
   * @param {string} what
   */
  const checkRecovered = (got, what) => {
    if (!isAddressEqual(/** @type {`0x${string}`} */ (got), addr)) {
      throw new Error(`nitrosign: the ${what} signature recovers ${got}, not the account's address ${addr}`);
    }
  };

  const account = toAccount({
    address: addr,

    /**
     * Signs an EIP-191 personal message: a string as its UTF-8 bytes, or
     * { raw } bytes. Returns the signature with v = 27 or 28.
     * @param {{ message: import("viem").SignableMessage }} p
     */
    async signMessage({ message }) {
      let bytes;
      if (typeof message === "string") {
        bytes = stringToBytes(message);
      } else if (message !== null && typeof message === "object" && "raw" in message) {
        bytes = typeof message.raw === "string" ? hexToBytes(message.raw) : message.raw;
      } else {
        throw new TypeError("nitrosign: signMessage: want a string or { raw }");
      }
      const resp = await client.signPersonalMessage(keyRef, bytes);
      checkDigest(hashMessage(message), resp, "message's EIP-191 hash");
      const signature = serializeSignature(parseEnclaveSignature(resp.signature));
      checkRecovered(await recoverMessageAddress({ message, signature }), "message");
      return signature;
    },

    /**
     * Signs a transaction and returns it serialized with serializer (viem's
     * serializeTransaction by default, or a chain's), as viem's own local
     * accounts do: the enclave signs keccak256 of the unsigned form.
     * @param {import("viem").TransactionSerializable} transaction
     * @param {{ serializer?: import("viem").SerializeTransactionFn<any> }} [options]
     */
    async signTransaction(transaction, options = {}) {
      const serializer = options.serializer ?? serializeTransaction;
      // A blob transaction is signed without its sidecars (the network
      // wrapper), as viem's signTransaction does.
      const signable = transaction.type === "eip4844" ? { ...transaction, sidecars: false } : transaction;
      const unsigned = await serializer(/** @type {any} */ (signable));
      if (!isHex(unsigned)) {
        throw new Error("nitrosign: the serializer returned no hex");
      }
      const hash = keccak256(unsigned);
      const resp = await client.signTransaction(keyRef, unsigned);
      checkDigest(hash, resp, "transaction's signing hash");
      const { r, s, yParity } = parseEnclaveSignature(resp.signature);
      checkRecovered(await recoverAddress({ hash, signature: { r, s, yParity } }), "transaction");
      const signed = await serializer(/** @type {any} */ (transaction), { r, s, yParity, v: yParity === 0 ? 27n : 28n });
      if (signable === transaction && serializer === serializeTransaction && signed !== resp.signed_transaction) {
        throw new Error("nitrosign: the enclave's signed_transaction is not the transaction asked for");
      }
      return signed;
    },

    /**
     * Signs EIP-712 typed data and returns the signature with v = 27 or 28.
     * The request carries the eth_signTypedData_v4 JSON viem's wallet
     * client sends to a JSON-RPC account (the EIP712Domain type made of
     * the domain's present members).
     * @type {any}
     * @param {import("viem").TypedDataDefinition} parameters
     */
    async signTypedData(parameters) {
      const { domain, message, primaryType, types: types_ } = /** @type {any} */ (parameters);
      const types = { EIP712Domain: getTypesForEIP712Domain({ domain }), ...types_ };
      validateTypedData({ domain, message, primaryType, types });
      const json = serializeTypedData({ domain, message, primaryType, types });
      const resp = await client.signTypedData(keyRef, json);
      checkDigest(hashTypedData(/** @type {any} */ (parameters)), resp, "typed data's EIP-712 hash");
      const signature = serializeSignature(parseEnclaveSignature(resp.signature));
      checkRecovered(await recoverTypedDataAddress({ .../** @type {any} */ (parameters), signature }), "typed-data");
      return signature;
    },
  });
  return /** @type {import("viem").LocalAccount<"custom">} */ (account);
}

/**
 * nitrosignAccount for the key with id (or address) key, its address
 * looked up with GET /v1/keys.
 * @param {NitrosignClient} client
 * @param {string} key
 */
export async function nitrosignAccountFromKey(client, key) {
  const keys = await client.keys();
  const k = keys.find((k) => k.id === key || k.address.toLowerCase() === key.toLowerCase());
  if (k === undefined) {
    throw new NitrosignError(`nitrosign: no signing key ${JSON.stringify(key)} (GET /v1/keys lists ${keys.map((k) => k.id).join(", ") || "none"})`, { code: "unknown_key" });
  }
  return nitrosignAccount({ client, address: k.address, key: k.id });
}
