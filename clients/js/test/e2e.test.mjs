// End-to-end tests against a running dev stack (`nitrosign dev`), which
// node_test.go starts with the real enclave binary. They skip unless
//
//   NITROSIGN_URL         the host's base URL, such as http://127.0.0.1:8420
//   NITROSIGN_CLIENT_KEY  the dev client's stamping key (DATA-DIR/client.pem)
//
// are set; with NITROSIGN_DATA_DIR (the dev stack's data directory, which
// holds the dev approvers' keys) they also approve held requests and
// follow them to their signature. They rely on the dev stack's example
// policy (internal/devstack/example.go).

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import * as ethers from "ethers";
import * as viem from "viem";
import { NitrosignClient, NitrosignError, PendingApprovalError, generateStampKey, parseStampKey } from "../index.js";
import { NitrosignSigner } from "../ethers.js";
import { nitrosignAccount, nitrosignAccountFromKey } from "../viem.js";

const URL_ = process.env.NITROSIGN_URL;
const KEY_FILE = process.env.NITROSIGN_CLIENT_KEY;
const DATA_DIR = process.env.NITROSIGN_DATA_DIR;
const skip = !URL_ || !KEY_FILE ? "set NITROSIGN_URL and NITROSIGN_CLIENT_KEY to a dev stack (go test ./clients/js runs it)" : false;
const skipApprovals = skip || (!DATA_DIR ? "set NITROSIGN_DATA_DIR to approve held requests" : false);

// The example policy's allowlisted destinations, chains and typed-data
// domain; Sepolia transfers above 0.5 ETH wait for both dev approvers.
const DEST_A = "0x1111111111111111111111111111111111111111";
const DEST_B = "0x2222222222222222222222222222222222222222";
const NOT_ALLOWED = "0x3333333333333333333333333333333333333333";
const SEPOLIA = 11155111;
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
const FEES = { maxFeePerGas: 40_000_000_000n, maxPriorityFeePerGas: 1_500_000_000n };

const client = () => new NitrosignClient({ url: URL_, stampKey: readFileSync(KEY_FILE) });

/**
 * A fake Ethereum node for chain 1 (JSON-RPC over HTTP): enough for ethers'
 * populateTransaction and viem's prepareTransactionRequest to fill in a
 * transfer, and eth_sendRawTransaction to receive it. It returns its URL
 * and the raw transactions sent.
 */
async function fakeNode(t) {
  const sent = [];
  const gwei = (n) => "0x" + (BigInt(n) * 1_000_000_000n).toString(16);
  const block = { number: "0x10", hash: "0x" + "ab".repeat(32), parentHash: "0x" + "cd".repeat(32), timestamp: "0x6553f100", baseFeePerGas: gwei(10), gasLimit: "0x1c9c380", gasUsed: "0x0", miner: "0x" + "00".repeat(20), difficulty: "0x0", extraData: "0x", nonce: "0x0000000000000000", transactions: [] };
  const answers = {
    eth_chainId: () => "0x1",
    net_version: () => "1",
    eth_blockNumber: () => block.number,
    eth_getBlockByNumber: () => block,
    eth_getTransactionCount: () => "0x9",
    eth_estimateGas: () => "0x5208",
    eth_gasPrice: () => gwei(12),
    eth_maxPriorityFeePerGas: () => gwei(1),
    eth_sendRawTransaction: ([raw]) => {
      sent.push(raw);
      return ethers.keccak256(raw);
    },
  };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString());
      const one = (r) => (answers[r.method] ? { jsonrpc: "2.0", id: r.id, result: answers[r.method](r.params ?? []) } : { jsonrpc: "2.0", id: r.id, error: { code: -32601, message: `fake node: no ${r.method}` } });
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(Array.isArray(body) ? body.map(one) : one(body)));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${server.address().port}`, sent };
}

/** Approves a held request as dev approver i, with its key from DATA_DIR. */
async function approve(approvalId, digest, i) {
  const signer = parseStampKey(readFileSync(join(DATA_DIR, `approver-${i}.pem`)));
  const msg = Buffer.concat([Buffer.from("nitrosign approval v1\n"), Buffer.from(digest.slice(2), "hex")]);
  const sig = await signer.sign(msg);
  const res = await fetch(`${URL_}/v1/approvals`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ approval_id: approvalId, decision: "approve", approver: `dev-approver-${i}`, signature: "0x" + Buffer.from(sig).toString("hex") }),
  });
  const text = await res.text();
  assert.ok(res.status === 200 || res.status === 202, `approval ${i}: HTTP ${res.status}: ${text}`);
}

test("ethers v6: NitrosignSigner", { skip }, async (t) => {
  const signer = await NitrosignSigner.fromKey(client(), "hot-0");
  const keys = await signer.client.keys();
  assert.equal(signer.address, keys[0].address);
  assert.equal(await signer.getAddress(), ethers.getAddress(keys[0].address));

  await t.test("an EIP-1559 transaction", async () => {
    const req = { type: 2, chainId: 1, nonce: 7, to: DEST_A, value: ethers.parseEther("0.01"), gasLimit: 21000, ...FEES };
    const signed = ethers.Transaction.from(await signer.signTransaction(req));
    assert.equal(signed.from, signer.address);
    assert.equal(signed.type, 2);
    assert.equal(signed.chainId, 1n);
    assert.equal(signed.nonce, 7);
    assert.equal(signed.to, ethers.getAddress(DEST_A));
    assert.equal(signed.value, ethers.parseEther("0.01"));
    assert.equal(signed.maxFeePerGas, FEES.maxFeePerGas);
    assert.equal(ethers.recoverAddress(signed.unsignedHash, signed.signature), signer.address);
  });

  await t.test("a legacy EIP-155 transaction", async () => {
    const req = { type: 0, chainId: SEPOLIA, nonce: 1, to: DEST_B, value: ethers.parseEther("0.25"), gasLimit: 21000, gasPrice: 25_000_000_000n };
    const raw = await signer.signTransaction(req);
    const signed = ethers.Transaction.from(raw);
    assert.equal(signed.from, signer.address);
    assert.equal(signed.type, 0);
    assert.equal(signed.chainId, BigInt(SEPOLIA));
    assert.ok(signed.signature.v === 27 || signed.signature.v === 28);
    assert.equal(signed.signature.networkV, BigInt(SEPOLIA) * 2n + 35n + BigInt(signed.signature.yParity));
  });

  await t.test("a personal message, verified by ethers", async () => {
    for (const m of ["nitrosign dev: hello", ethers.toUtf8Bytes("bytes too")]) {
      const sig = await signer.signMessage(m);
      assert.match(sig, /^0x[0-9a-f]{128}(1b|1c)$/);
      assert.equal(ethers.verifyMessage(m, sig), signer.address);
    }
  });

  await t.test("typed data, verified by ethers", async () => {
    const sig = await signer.signTypedData(MAIL_DOMAIN, MAIL_TYPES, MAIL);
    assert.match(sig, /^0x[0-9a-f]{128}(1b|1c)$/);
    assert.equal(ethers.verifyTypedData(MAIL_DOMAIN, MAIL_TYPES, MAIL, sig), signer.address);
  });

  await t.test("sendTransaction through a provider fills in and broadcasts", async () => {
    const node = await fakeNode(t);
    const provider = new ethers.JsonRpcProvider(node.url, 1, { staticNetwork: true, batchMaxCount: 1 });
    t.after(() => provider.destroy());
    const connected = signer.connect(provider);
    const resp = await connected.sendTransaction({ to: DEST_A, value: ethers.parseEther("0.02") });
    assert.equal(node.sent.length, 1);
    const signed = ethers.Transaction.from(node.sent[0]);
    assert.equal(resp.hash, signed.hash);
    assert.equal(signed.from, signer.address);
    assert.equal(signed.type, 2);
    assert.equal(signed.nonce, 9, "the node's nonce");
    assert.equal(signed.gasLimit, 21000n, "the node's gas estimate");
    assert.equal(signed.chainId, 1n);
    assert.ok(signed.maxFeePerGas > 0n && signed.maxPriorityFeePerGas > 0n, "fees from the node");
  });

  await t.test("connect keeps the key", async () => {
    const provider = new ethers.JsonRpcProvider("http://127.0.0.1:9", 1, { staticNetwork: true });
    const connected = signer.connect(provider);
    assert.equal(connected.provider, provider);
    assert.equal(await connected.getAddress(), signer.address);
    provider.destroy();
  });

  await t.test("a transaction from another address is refused before it is sent", async () => {
    await assert.rejects(
      signer.signTransaction({ type: 2, chainId: 1, nonce: 0, from: DEST_A, to: DEST_A, value: 1n, gasLimit: 21000, ...FEES }),
      /not the signer's address/,
    );
  });

  await t.test("refusals name the rule", async () => {
    for (const [name, call, rule] of [
      ["destination not allowlisted", () => signer.signTransaction({ type: 2, chainId: 1, nonce: 0, to: NOT_ALLOWED, value: 1n, gasLimit: 21000, ...FEES }), "destinations"],
      ["chain not allowed", () => signer.signTransaction({ type: 2, chainId: 10, nonce: 0, to: DEST_A, value: 1n, gasLimit: 21000, ...FEES }), "chains"],
      ["above the per-transaction cap", () => signer.signTransaction({ type: 2, chainId: 1, nonce: 0, to: DEST_A, value: ethers.parseEther("2"), gasLimit: 21000, ...FEES }), "max_per_transaction"],
      ["another typed-data domain", () => signer.signTypedData({ ...MAIL_DOMAIN, verifyingContract: DEST_A }, MAIL_TYPES, MAIL), "typed_data_domains"],
      ["a 32-byte message (a raw digest)", () => signer.signMessage(new Uint8Array(32).fill(1)), "raw_digest"],
    ]) {
      await assert.rejects(call(), (err) => {
        assert.ok(err instanceof NitrosignError, `${name}: ${err}`);
        assert.equal(err.status, 403, name);
        assert.equal(err.code, "policy_denied", name);
        assert.equal(err.rule, rule, name);
        return true;
      });
    }
  });
});

test("viem: nitrosignAccount", { skip }, async (t) => {
  const c = client();
  const account = await nitrosignAccountFromKey(c, "hot-0");
  const keys = await c.keys();
  assert.equal(account.address, viem.getAddress(keys[0].address));
  assert.equal(account.type, "local");
  assert.equal(nitrosignAccount({ client: c, address: keys[0].address.toLowerCase() }).address, account.address);

  await t.test("an EIP-1559 transaction", async () => {
    const tx = { type: "eip1559", chainId: 1, nonce: 8, to: DEST_A, value: viem.parseEther("0.01"), gas: 21000n, ...FEES };
    const raw = await account.signTransaction(tx);
    assert.ok(raw.startsWith("0x02"));
    assert.equal(await viem.recoverTransactionAddress({ serializedTransaction: raw }), account.address);
    const parsed = viem.parseTransaction(raw);
    assert.equal(parsed.chainId, 1);
    assert.equal(parsed.nonce, 8);
    assert.equal(parsed.to, DEST_A);
    assert.equal(parsed.value, viem.parseEther("0.01"));
  });

  await t.test("a legacy EIP-155 transaction", async () => {
    const tx = { type: "legacy", chainId: SEPOLIA, nonce: 2, to: DEST_B, value: viem.parseEther("0.25"), gas: 21000n, gasPrice: 25_000_000_000n };
    const raw = await account.signTransaction(tx);
    assert.equal(await viem.recoverTransactionAddress({ serializedTransaction: raw }), account.address);
    const parsed = viem.parseTransaction(raw);
    assert.equal(parsed.type, "legacy");
    assert.equal(parsed.chainId, SEPOLIA);
  });

  await t.test("a personal message, verified by viem", async () => {
    for (const message of ["nitrosign dev: hello", { raw: viem.toHex("raw bytes") }, { raw: viem.toBytes("raw bytes too") }]) {
      const signature = await account.signMessage({ message });
      assert.match(signature, /^0x[0-9a-f]{128}(1b|1c)$/);
      assert.equal(await viem.verifyMessage({ address: account.address, message, signature }), true);
    }
  });

  await t.test("typed data, verified by viem", async () => {
    for (const domain of [MAIL_DOMAIN, { ...MAIL_DOMAIN, chainId: 1n }]) {
      const typed = { domain, types: MAIL_TYPES, primaryType: "Mail", message: MAIL };
      const signature = await account.signTypedData(typed);
      assert.equal(await viem.verifyTypedData({ address: account.address, ...typed, signature }), true);
    }
  });

  await t.test("a wallet client signs with the account", async () => {
    const wallet = viem.createWalletClient({ account, chain: viem.defineChain({ id: 1, name: "mainnet", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: ["http://127.0.0.1:9"] } } }), transport: viem.http("http://127.0.0.1:9") });
    const signature = await wallet.signMessage({ message: "through a wallet client" });
    assert.equal(await viem.verifyMessage({ address: account.address, message: "through a wallet client", signature }), true);
  });

  await t.test("a wallet client fills in and sends a transaction", async () => {
    const node = await fakeNode(t);
    const chain = viem.defineChain({ id: 1, name: "fake", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [node.url] } } });
    const wallet = viem.createWalletClient({ account, chain, transport: viem.http(node.url) });
    const hash = await wallet.sendTransaction({ to: DEST_A, value: viem.parseEther("0.02") });
    assert.equal(node.sent.length, 1);
    assert.equal(hash, viem.keccak256(node.sent[0]));
    assert.equal(await viem.recoverTransactionAddress({ serializedTransaction: node.sent[0] }), account.address);
    const parsed = viem.parseTransaction(node.sent[0]);
    assert.equal(parsed.type, "eip1559");
    assert.equal(parsed.nonce, 9);
    assert.equal(parsed.gas, 21000n);
    assert.equal(parsed.chainId, 1);
  });

  await t.test("refusals name the rule", async () => {
    await assert.rejects(
      account.signTransaction({ type: "eip1559", chainId: 1, nonce: 0, to: NOT_ALLOWED, value: 1n, gas: 21000n, ...FEES }),
      (err) => err instanceof NitrosignError && err.code === "policy_denied" && err.rule === "destinations",
    );
  });
});

/** A random source that answers the same random bytes every time: every request_id the same. */
function sameBytes() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return (n) => b.slice(0, n);
}

test("the REST client: keys, health, and refusals before the policy", { skip }, async (t) => {
  const c = client();
  const keys = await c.keys();
  assert.equal(keys.length, 1);
  assert.equal(keys[0].id, "hot-0");
  const health = await c.health();
  assert.equal(health.status, "ok");
  assert.equal(health.enclave?.keys, 1);
  const msg = new TextEncoder().encode("refusals");
  for (const [name, make, key, status, code] of [
    ["unknown key", () => c, "hot-9", 404, "unknown_key"],
    ["stale timestamp", () => new NitrosignClient({ url: URL_, stampKey: readFileSync(KEY_FILE), now: () => Date.now() - 10 * 60_000 }), "hot-0", 401, "stale_request"],
    ["unregistered client key", () => new NitrosignClient({ url: URL_, stampKey: generateStampKey("ed25519").signer }), "hot-0", 401, "unauthorized"],
    ["replayed request id", () => new NitrosignClient({ url: URL_, stampKey: readFileSync(KEY_FILE), randomBytes: sameBytes() }), "hot-0", 401, "replayed_request"],
  ]) {
    await t.test(name, async () => {
      const cc = make();
      if (code === "replayed_request") {
        await cc.signPersonalMessage(key, msg); // the first use of the id is signed
      }
      await assert.rejects(cc.signPersonalMessage(key, msg), (err) => {
        assert.ok(err instanceof NitrosignError, String(err));
        assert.equal(err.status, status);
        assert.equal(err.code, code);
        return true;
      });
    });
  }
  await t.test("a stamp over other bytes", async () => {
    const { body, stamp } = await c.stampRequest("hot-0", { eth_personal_message: { message: "0x01" } });
    const res = await fetch(`${URL_}/v1/sign`, { method: "POST", headers: { "X-Nitrosign-Stamp": stamp }, body: Buffer.concat([body, Buffer.from(" ")]) });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, "unauthorized");
    const ok = await fetch(`${URL_}/v1/sign`, { method: "POST", headers: { "X-Nitrosign-Stamp": stamp }, body });
    assert.equal(ok.status, 200, "the same stamp over its own bytes");
  });
});

test("a transfer over the approval threshold waits for approvals", { skip }, async () => {
  const signer = await NitrosignSigner.fromKey(client(), "hot-0");
  await assert.rejects(
    signer.signTransaction({ type: 2, chainId: SEPOLIA, nonce: 3, to: DEST_B, value: ethers.parseEther("0.8"), gasLimit: 21000, ...FEES }),
    (err) => {
      assert.ok(err instanceof PendingApprovalError, String(err));
      assert.match(err.approvalId, /^[A-Za-z0-9._:-]{1,64}$/);
      assert.equal(err.quorum, 2);
      assert.match(err.digest, /^0x[0-9a-f]{64}$/);
      return true;
    },
  );
});

test("approved requests are followed to their signature", { skip: skipApprovals }, async (t) => {
  await t.test("waitForApproval after a PendingApprovalError", async () => {
    const c = client();
    const account = await nitrosignAccountFromKey(c, "hot-0");
    let pending;
    await assert.rejects(
      account.signTransaction({ type: "eip1559", chainId: SEPOLIA, nonce: 4, to: DEST_B, value: viem.parseEther("0.8"), gas: 21000n, ...FEES }),
      (err) => {
        pending = err;
        return err instanceof PendingApprovalError;
      },
    );
    await approve(pending.approvalId, pending.digest, 1);
    await approve(pending.approvalId, pending.digest, 2);
    const resp = await c.waitForApproval(pending.approvalId, { timeoutMs: 60_000, intervalMs: 250 });
    assert.equal(resp.from, account.address);
    assert.equal(await viem.recoverTransactionAddress({ serializedTransaction: resp.signed_transaction }), account.address);
    assert.equal(viem.parseTransaction(resp.signed_transaction).value, viem.parseEther("0.8"));
  });

  await t.test("a client that waits returns the approved signature", async () => {
    // The approvers act as soon as the host answers 202: a fetch that
    // watches the answers stands in for them.
    let approvals = null;
    const watching = async (url, init) => {
      const res = await fetch(url, init);
      if (res.status === 202 && approvals === null) {
        const p = await res.clone().json();
        approvals = (async () => {
          await approve(p.approval_id, p.digest, 1);
          await approve(p.approval_id, p.digest, 2);
        })();
      }
      return res;
    };
    const c = new NitrosignClient({ url: URL_, stampKey: readFileSync(KEY_FILE), fetch: watching, approvalTimeoutMs: 60_000, approvalPollIntervalMs: 250 });
    const signer = await NitrosignSigner.fromKey(c, "hot-0");
    const raw = await signer.signTransaction({ type: 2, chainId: SEPOLIA, nonce: 5, to: DEST_B, value: ethers.parseEther("0.9"), gasLimit: 21000, ...FEES });
    await approvals;
    const signed = ethers.Transaction.from(raw);
    assert.equal(signed.from, signer.address);
    assert.equal(signed.value, ethers.parseEther("0.9"));
  });

  await t.test("a client that waits gives up with the approval id", async () => {
    const c = new NitrosignClient({ url: URL_, stampKey: readFileSync(KEY_FILE), approvalTimeoutMs: 300, approvalPollIntervalMs: 250 });
    const signer = await NitrosignSigner.fromKey(c, "hot-0");
    await assert.rejects(
      signer.signTransaction({ type: 2, chainId: SEPOLIA, nonce: 6, to: DEST_B, value: ethers.parseEther("0.7"), gasLimit: 21000, ...FEES }),
      (err) => err instanceof PendingApprovalError && /not approved within 300 ms/.test(err.message) && err.approvalId !== "",
    );
  });
});
