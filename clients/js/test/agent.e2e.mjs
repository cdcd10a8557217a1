// agent.e2e.mjs: ethers v6, unchanged, through `nitrosign agent` in proxy
// mode: JsonRpcProvider(agent).getSigner() sends a transaction
// (eth_sendTransaction: the agent fills in nonce, gas and fees, the enclave
// signs, the node mines) and signs typed data and a message that ethers
// verifies. crosscheck/clients (a Go test) runs it against the dev stack's
// enclave, the agent and go-ethereum's simulated backend on Sepolia's chain
// id; it skips unless NITROSIGN_AGENT_URL is set.
//
// Environment:
//   NITROSIGN_AGENT_URL      the agent's JSON-RPC URL (http://127.0.0.1:8550),
//                            started with --upstream NODE_URL; required
//   NITROSIGN_AGENT_ADDRESS  the enclave key's address eth_accounts must list;
//                            default: eth_accounts' first address
//   NITROSIGN_AGENT_TO       the recipient of the 0.01 ETH transfer; default a
//                            fresh random address (the policy must allow it)
//   NITROSIGN_AGENT_TIMEOUT_MS  how long to wait for the receipt (default 60000)
//
// The node must mine the transaction (a simulated backend that commits a
// block when a transaction reaches its pool, or a dev chain), the key's
// account must hold 0.01 ETH and the fees, and the agent's policy must allow
// the transfer on the node's chain,
// personal messages, and the EIP-712 specification's Mail domain (name
// "Ether Mail", version "1", chainId 1, verifyingContract
// 0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC).

import { test } from "node:test";
import assert from "node:assert/strict";
import * as ethers from "ethers";

const AGENT_URL = process.env.NITROSIGN_AGENT_URL;
const skip = AGENT_URL ? false : "set NITROSIGN_AGENT_URL to an agent in proxy mode (crosscheck/clients does)";

const MAIL_DOMAIN = { name: "Ether Mail", version: "1", chainId: 1, verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC" };
const MAIL_TYPES = {
  Person: [
    { name: "name", type: "string" },
    { name: "wallet", type: "address" },
  ],
  Mail: [
    { name: "from", type: "Person" },
    { name: "to", type: "Person" },
    { name: "contents", type: "string" },
  ],
};
const MAIL = {
  from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
  to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
  contents: "Hello, Bob!",
};

test("ethers v6 through the agent", { skip }, async (t) => {
  const provider = new ethers.JsonRpcProvider(AGENT_URL);
  provider.pollingInterval = 250;
  t.after(() => provider.destroy());

  const accounts = /** @type {string[]} */ (await provider.send("eth_accounts", []));
  assert.ok(Array.isArray(accounts) && accounts.length > 0, `eth_accounts: ${JSON.stringify(accounts)}`);
  const want = process.env.NITROSIGN_AGENT_ADDRESS ? ethers.getAddress(process.env.NITROSIGN_AGENT_ADDRESS) : ethers.getAddress(accounts[0]);
  assert.ok(
    accounts.some((a) => ethers.getAddress(a) === want),
    `eth_accounts ${JSON.stringify(accounts)} does not list ${want}`,
  );
  const signer = await provider.getSigner(want);
  assert.equal(await signer.getAddress(), want);

  await t.test("sendTransaction is mined with the enclave's address as sender", async () => {
    const to = process.env.NITROSIGN_AGENT_TO ? ethers.getAddress(process.env.NITROSIGN_AGENT_TO) : ethers.Wallet.createRandom().address;
    const value = ethers.parseEther("0.01");
    const before = await provider.getBalance(to);
    const tx = await signer.sendTransaction({ to, value });
    assert.equal(ethers.getAddress(tx.from), want);
    const timeout = Number(process.env.NITROSIGN_AGENT_TIMEOUT_MS ?? 60_000);
    const receipt = await tx.wait(1, timeout);
    assert.ok(receipt !== null, "no receipt");
    assert.equal(receipt.status, 1, `receipt status ${receipt.status}`);
    assert.equal(ethers.getAddress(receipt.from), want);
    assert.equal(ethers.getAddress(/** @type {string} */ (receipt.to)), to);
    assert.equal(receipt.hash, tx.hash);
    // At the receipt's block: ethers answers the same call within 250 ms
    // from its cache, and the node may mine at once.
    assert.equal(await provider.getBalance(to, receipt.blockNumber), before + value);
    // The transaction the node holds is signed by the enclave's key.
    const mined = await provider.getTransaction(tx.hash);
    assert.ok(mined !== null);
    assert.equal(ethers.Transaction.from(mined).from, want);
    assert.equal(mined.chainId, (await provider.getNetwork()).chainId);
  });

  await t.test("signTypedData (eth_signTypedData_v4), verified by ethers", async () => {
    const sig = await signer.signTypedData(MAIL_DOMAIN, MAIL_TYPES, MAIL);
    assert.match(sig, /^0x[0-9a-f]{128}(1b|1c)$/, "v is 27 or 28");
    assert.equal(ethers.verifyTypedData(MAIL_DOMAIN, MAIL_TYPES, MAIL, sig), want);
  });

  await t.test("signMessage (personal_sign), verified by ethers", async () => {
    // Not 32 bytes long: the dev policy refuses those as raw digests.
    const message = "nitrosign agent: hello from ethers";
    const sig = await signer.signMessage(message);
    assert.match(sig, /^0x[0-9a-f]{128}(1b|1c)$/, "v is 27 or 28");
    assert.equal(ethers.verifyMessage(message, sig), want);
  });
});
