// agent-viem.e2e.mjs: viem, unchanged, through `nitrosign agent` in proxy
// mode: a wallet client with the agent's JSON-RPC account (no local key)
// sends a transaction (eth_sendTransaction: the agent fills in nonce, gas
// and fees, the enclave signs, the node mines) and signs typed data and a
// message that viem verifies. crosscheck/clients (a Go test) runs it against
// the dev stack's enclave, the agent and go-ethereum's simulated backend on
// Sepolia's chain id; it skips unless NITROSIGN_AGENT_URL is set.
//
// Environment:
//   NITROSIGN_AGENT_URL      the agent's JSON-RPC URL (http://127.0.0.1:8550),
//                            started with --upstream NODE_URL of a node on
//                            Sepolia's chain id (11155111); required
//   NITROSIGN_AGENT_ADDRESS  the enclave key's address eth_accounts must list;
//                            default: eth_accounts' first address
//   NITROSIGN_AGENT_TO       the recipient of the 0.02 ETH transfer; default a
//                            fresh random address (the policy must allow it)
//   NITROSIGN_AGENT_TIMEOUT_MS  how long to wait for the receipt, and for each
//                            request (default 60000)
//
// The node must mine the transaction, the key's account must hold 0.02 ETH
// and the fees, and the agent's policy must allow the transfer on Sepolia,
// personal messages, and the EIP-712 specification's Mail domain (name
// "Ether Mail", version "1", chainId 1, verifyingContract
// 0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC).

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  getAddress,
  http,
  parseEther,
  recoverMessageAddress,
  recoverTransactionAddress,
  recoverTypedDataAddress,
  verifyMessage,
  verifyTypedData,
} from "viem";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import { sepolia } from "viem/chains";

const AGENT_URL = process.env.NITROSIGN_AGENT_URL;
const skip = AGENT_URL ? false : "set NITROSIGN_AGENT_URL to an agent in proxy mode (crosscheck/clients does)";

const MAIL_DOMAIN = /** @type {const} */ ({ name: "Ether Mail", version: "1", chainId: 1, verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC" });
const MAIL_TYPES = /** @type {const} */ ({
  Person: [
    { name: "name", type: "string" },
    { name: "wallet", type: "address" },
  ],
  Mail: [
    { name: "from", type: "Person" },
    { name: "to", type: "Person" },
    { name: "contents", type: "string" },
  ],
});
const MAIL = /** @type {const} */ ({
  from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
  to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
  contents: "Hello, Bob!",
});

test("viem through the agent", { skip }, async (t) => {
  const agentURL = /** @type {string} */ (AGENT_URL);
  // Sepolia, as an application defines it, with the agent as its RPC.
  const chain = defineChain({ ...sepolia, rpcUrls: { default: { http: [agentURL] } } });
  // viem's HTTP transport gives up on a request after 10 s by default; a
  // signature through the enclave takes milliseconds, but a loaded test
  // machine is no place for a deadline, so it gets the receipt's.
  const timeout = Number(process.env.NITROSIGN_AGENT_TIMEOUT_MS ?? 60_000);
  const wallet = createWalletClient({ chain, transport: http(agentURL, { timeout }) });
  const pub = createPublicClient({ chain, transport: http(agentURL, { timeout }), pollingInterval: 250 });

  const addresses = await wallet.getAddresses();
  assert.ok(addresses.length > 0, `eth_accounts: ${JSON.stringify(addresses)}`);
  const want = process.env.NITROSIGN_AGENT_ADDRESS ? getAddress(process.env.NITROSIGN_AGENT_ADDRESS) : getAddress(addresses[0]);
  assert.ok(
    addresses.some((a) => getAddress(a) === want),
    `eth_accounts ${JSON.stringify(addresses)} does not list ${want}`,
  );
  // A JSON-RPC account: viem holds no key and asks the agent to sign.
  const account = want;

  await t.test("sendTransaction (eth_sendTransaction) is mined with the enclave's address as sender", async () => {
    assert.equal(await pub.getChainId(), sepolia.id);
    const to = process.env.NITROSIGN_AGENT_TO ? getAddress(process.env.NITROSIGN_AGENT_TO) : privateKeyToAddress(generatePrivateKey());
    const value = parseEther("0.02");
    const before = await pub.getBalance({ address: to });
    const hash = await wallet.sendTransaction({ account, to, value });
    assert.match(hash, /^0x[0-9a-f]{64}$/);
    const receipt = await pub.waitForTransactionReceipt({ hash, timeout, pollingInterval: 250 });
    assert.equal(receipt.status, "success");
    assert.equal(receipt.transactionHash, hash);
    assert.equal(getAddress(receipt.from), want);
    assert.equal(getAddress(/** @type {string} */ (receipt.to)), to);
    assert.equal(await pub.getBalance({ address: to, blockNumber: receipt.blockNumber }), before + value);
    // The transaction the node holds: what was asked, on Sepolia, and viem
    // recovers the enclave's address from its signature.
    const mined = await pub.getTransaction({ hash });
    assert.equal(mined.chainId, sepolia.id);
    assert.equal(mined.value, value);
    assert.equal(getAddress(/** @type {string} */ (mined.to)), to);
    const raw = await pub.request({ method: "eth_getRawTransactionByHash", params: [hash] });
    assert.equal(await recoverTransactionAddress({ serializedTransaction: /** @type {any} */ (raw) }), want);
  });

  await t.test("signTypedData (eth_signTypedData_v4), verified by viem", async () => {
    const signature = await wallet.signTypedData({ account, domain: MAIL_DOMAIN, types: MAIL_TYPES, primaryType: "Mail", message: MAIL });
    assert.match(signature, /^0x[0-9a-f]{128}(1b|1c)$/, "v is 27 or 28");
    const params = { domain: MAIL_DOMAIN, types: MAIL_TYPES, primaryType: /** @type {const} */ ("Mail"), message: MAIL, signature };
    assert.ok(await verifyTypedData({ address: want, ...params }), "verifyTypedData");
    assert.equal(await recoverTypedDataAddress(params), want);
  });

  await t.test("signMessage (personal_sign), verified by viem", async () => {
    // Not 32 bytes long: the dev policy refuses those as raw digests.
    const message = "nitrosign agent: a message signed through viem";
    const signature = await wallet.signMessage({ account, message });
    assert.match(signature, /^0x[0-9a-f]{128}(1b|1c)$/, "v is 27 or 28");
    assert.ok(await verifyMessage({ address: want, message, signature }), "verifyMessage");
    assert.equal(await recoverMessageAddress({ message, signature }), want);
    // A message of raw bytes (viem sends them hex-encoded).
    const bytes = new Uint8Array([0x6e, 0x73, 0x00, 0xff]);
    const rawSig = await wallet.signMessage({ account, message: { raw: bytes } });
    assert.ok(await verifyMessage({ address: want, message: { raw: bytes }, signature: rawSig }), "verifyMessage of raw bytes");
  });
});
