// Unit tests of NitrosignClient against a fake host (node:http): what it
// sends, and how it reads every kind of answer.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { NitrosignClient, NitrosignError, PendingApprovalError, STAMP_HEADER, approvalDigest, generateStampKey, verifyStamp } from "../index.js";

const ADDRESS = "0x43065A1FC832E68379e95dB12AE4b76F57813A49";
const SIG = "0x" + "11".repeat(32) + "22".repeat(32) + "01";
const OK = { from: ADDRESS, signature: SIG, digest: "0x" + "33".repeat(32), audit_seq: 7 };

/**
 * Starts a fake host whose handler answers each request; returns its URL
 * and the requests it saw ({method, url, headers, body}).
 */
async function fakeHost(t, handler) {
  const seen = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const r = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(r);
      const answer = handler(r, seen.length);
      if (answer === null) {
        return; // never answer
      }
      const [status, body, headers = {}] = answer;
      res.writeHead(status, { "Content-Type": "application/json", ...headers });
      res.end(typeof body === "string" ? body : JSON.stringify(body));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${server.address().port}`, seen };
}

const key = generateStampKey("p256");

test("a sign request is the stamped body, sent as it is", async (t) => {
  const host = await fakeHost(t, () => [200, OK]);
  const c = new NitrosignClient({ url: host.url + "/", stampKey: key.pem, now: () => 1795261861422.7 });
  const resp = await c.signTransaction("hot-0", new Uint8Array([2, 0xc0]));
  assert.deepEqual(resp, OK);
  const r = host.seen[0];
  assert.equal(r.method, "POST");
  assert.equal(r.url, "/v1/sign");
  assert.equal(r.headers["content-type"], "application/json");
  const k = verifyStamp(r.headers[STAMP_HEADER.toLowerCase()], new Uint8Array(r.body));
  assert.deepEqual(k.publicKey, key.signer.publicKey);
  const body = JSON.parse(r.body.toString());
  assert.match(body.request_id, /^[0-9a-f]{32}$/);
  assert.deepEqual(body, { request_id: body.request_id, timestamp_ms: 1795261861422, key: "hot-0", eth_transaction: { unsigned: "0x02c0" } });

  await c.signPersonalMessage("hot-0", new TextEncoder().encode("hi"));
  await c.signTypedData("hot-0", { types: {}, primaryType: "A", domain: {}, message: {} });
  const ids = new Set(host.seen.map((r) => JSON.parse(r.body.toString()).request_id));
  assert.equal(ids.size, 3, "each request has a fresh request_id");
  assert.deepEqual(JSON.parse(host.seen[1].body.toString()).eth_personal_message, { message: "0x6869" });
  assert.equal(JSON.parse(host.seen[2].body.toString()).eth_typed_data.primaryType, "A");
});

test("a base URL with a path", async (t) => {
  const host = await fakeHost(t, () => [200, { keys: [{ id: "hot-0", address: ADDRESS, path: "m/44'/60'/0'/0/0" }] }]);
  const c = new NitrosignClient({ url: host.url + "/signer" });
  assert.equal((await c.keys())[0].address, ADDRESS);
  assert.equal(host.seen[0].url, "/signer/v1/keys");
  assert.equal(host.seen[0].headers[STAMP_HEADER.toLowerCase()], undefined, "GETs are not stamped");
  await assert.rejects(c.signTransaction("hot-0", "0x02"), /no stampKey/);
});

test("refusals and failures are NitrosignErrors", async (t) => {
  const answers = {
    "/policy": [403, { error: { code: "policy_denied", rule: "destinations", message: "0x33 is not on the allowlist" } }],
    "/no-rule": [401, { error: { code: "replayed_request", message: "seen" } }],
    "/proxy": [502, "<html>bad gateway</html>", { "Content-Type": "text/html" }],
    "/created": [201, OK],
    "/redirect": [307, "", { Location: "http://127.0.0.1:1/v1/sign" }],
    "/not-json": [200, "{"],
    "/bad-signature": [200, { ...OK, signature: SIG.slice(0, -2) + "1b" }],
    "/no-from": [200, { signature: SIG }],
    "/large": [200, { ...OK, pad: "x".repeat(2 << 20) }],
    "/202-not-pending": [202, { status: "signed", approval_id: "a" }],
    "/202-wrong-digest": [202, { status: "pending_approval", approval_id: "a1", digest: "0x" + "00".repeat(32), quorum: 2 }],
  };
  const host = await fakeHost(t, (r) => answers[r.url.replace("/v1/sign", "")]);
  for (const [path, status, code, rule, want] of [
    ["/policy", 403, "policy_denied", "destinations", /HTTP 403: 0x33 is not on the allowlist \(policy_denied, rule destinations\)/],
    ["/no-rule", 401, "replayed_request", "", /HTTP 401: seen \(replayed_request\)$/],
    ["/proxy", 502, "", "", /HTTP 502, not a nitrosign error answer/],
    ["/created", 201, "", "", /unexpected status 201/],
    ["/redirect", 307, "", "", /HTTP 307, not a nitrosign error answer/],
    ["/not-json", 200, "", "", /not JSON/],
    ["/no-from", 200, "", "", /lacks from or signature/],
    ["/large", 200, "", "", /larger than 1048576 bytes/],
    ["/202-not-pending", 202, "", "", /202 answer that is not a pending approval/],
    ["/202-wrong-digest", 202, "", "", /not the digest of the request sent/],
  ]) {
    const c = new NitrosignClient({ url: host.url + path, stampKey: key.signer });
    await assert.rejects(c.signTransaction("hot-0", "0x02"), (err) => {
      assert.ok(err instanceof NitrosignError, `${path}: ${err}`);
      assert.match(err.message, want, path);
      assert.equal(err.status, status, path);
      assert.equal(err.code, code, path);
      assert.equal(err.rule, rule, path);
      return true;
    });
  }
  const c = new NitrosignClient({ url: host.url + "/bad-signature", stampKey: key.signer });
  await assert.rejects(c.signTransaction("hot-0", "0x02"), /y-parity of 0 or 1/);
});

test("no answer in time, and no host", async (t) => {
  const host = await fakeHost(t, () => null);
  const c = new NitrosignClient({ url: host.url, stampKey: key.signer, timeoutMs: 200 });
  await assert.rejects(c.signTransaction("hot-0", "0x02"), (err) => err instanceof NitrosignError && err.status === 0 && /no answer within 200 ms/.test(err.message));
  const ac = new AbortController();
  const p = c.keys({ signal: ac.signal });
  ac.abort(new Error("stopped by the caller"));
  await assert.rejects(p, /stopped by the caller/);
  const gone = createServer();
  await new Promise((resolve) => gone.listen(0, "127.0.0.1", resolve));
  const port = gone.address().port;
  await new Promise((resolve) => gone.close(resolve));
  const closed = new NitrosignClient({ url: `http://127.0.0.1:${port}` });
  await assert.rejects(closed.health(), (err) => err instanceof NitrosignError && err.status === 0 && /GET \/v1\/health: .*ECONNREFUSED/.test(err.message));
});

/** A fake host that holds sign requests for approval: GET answers states in turn. */
async function approvalsHost(t, states) {
  let pendingBody = null;
  const host = await fakeHost(t, (r) => {
    if (r.method === "POST") {
      pendingBody = new Uint8Array(r.body);
      return [202, { status: "pending_approval", approval_id: "ap-1", digest: approvalDigest(pendingBody), quorum: 2, approvals: [], expires_at_ms: 1 }];
    }
    const state = states.shift() ?? "pending_approval";
    if (state === "gone") {
      return [404, { error: { code: "not_found", message: "no request waits for approval ap-1" } }];
    }
    const p = { status: state, approval_id: "ap-1", digest: approvalDigest(pendingBody), quorum: 2, approvals: ["dev-approver-1"], request: new TextDecoder().decode(pendingBody) };
    return [200, state === "signed" ? { ...p, result: OK } : p];
  });
  return host;
}

test("a request that waits for approvals", async (t) => {
  const host = await approvalsHost(t, ["pending_approval", "signed"]);
  const c = new NitrosignClient({ url: host.url, stampKey: key.signer });
  let pending;
  await assert.rejects(c.signTransaction("hot-0", "0x02"), (err) => {
    assert.ok(err instanceof PendingApprovalError, String(err));
    assert.equal(err.approvalId, "ap-1");
    assert.equal(err.quorum, 2);
    assert.equal(err.digest, approvalDigest(err.body));
    pending = err;
    return true;
  });
  assert.deepEqual(await c.waitForApproval(pending.approvalId, { timeoutMs: 60_000, intervalMs: 1 }), OK);
  assert.deepEqual(host.seen.map((r) => `${r.method} ${r.url}`), ["POST /v1/sign", "GET /v1/approvals/ap-1", "GET /v1/approvals/ap-1"]);
  await assert.rejects(c.approval("../keys"), /approval id: want/);
});

test("waiting for approvals within the client", async (t) => {
  for (const [name, states, want] of [
    ["signed", ["pending_approval", "signed"], null],
    ["rejected", ["rejected"], (err) => err instanceof NitrosignError && err.code === "approval_rejected" && err.approvalId === "ap-1"],
    ["expired", ["pending_approval", "gone"], (err) => err instanceof NitrosignError && err.code === "not_found" && err.approvalId === "ap-1" && /expired or is unknown/.test(err.message)],
  ]) {
    const host = await approvalsHost(t, states);
    const c = new NitrosignClient({ url: host.url, stampKey: key.signer, approvalTimeoutMs: 60_000, approvalPollIntervalMs: 1 });
    if (want === null) {
      assert.deepEqual(await c.signTransaction("hot-0", "0x02"), OK, name);
    } else {
      await assert.rejects(c.signTransaction("hot-0", "0x02"), want, name);
    }
  }
  // Never approved: after the deadline, the pending request's id.
  const host = await approvalsHost(t, []);
  const c = new NitrosignClient({ url: host.url, stampKey: key.signer, approvalTimeoutMs: 300 });
  await assert.rejects(c.signTransaction("hot-0", "0x02"), (err) => err instanceof PendingApprovalError && err.approvalId === "ap-1" && /not approved within 300 ms/.test(err.message));
  await assert.rejects(c.waitForApproval("ap-1", { timeoutMs: 1 }), (err) => err instanceof PendingApprovalError && err.approvalId === "ap-1" && err.pending.approvals[0] === "dev-approver-1");
});

test("options are checked", () => {
  for (const [name, opts, want] of [
    ["no options", undefined, /want an options object/],
    ["not a URL", { url: "localhost:8420" }, /scheme "localhost", want http or https/],
    ["ftp", { url: "ftp://h" }, /want http or https/],
    ["user info", { url: "http://u:p@h" }, /no user info/],
    ["query", { url: "http://h/?a=1" }, /no user info, query or fragment/],
    ["bad key", { url: "http://h", stampKey: 5 }, /stampKey: want PEM text/],
    ["bad timeout", { url: "http://h", timeoutMs: 0 }, /timeoutMs must be a positive number/],
    ["bad approval timeout", { url: "http://h", approvalTimeoutMs: -1 }, /approvalTimeoutMs must be 0/],
  ]) {
    assert.throws(() => new NitrosignClient(opts), want, name);
  }
  const c = new NitrosignClient({ url: "https://signer.internal:8420/", stampKey: key.pem });
  assert.equal(c.url, "https://signer.internal:8420");
  assert.deepEqual(c.stampPublicKey, { scheme: "p256", publicKey: key.signer.publicKey });
});

test("bad arguments are rejections, before anything is sent", async () => {
  const c = new NitrosignClient({ url: "http://127.0.0.1:9", stampKey: key.pem, fetch: () => assert.fail("sent") });
  await assert.rejects(c.signTransaction("hot-0", "0x"), /non-empty/);
  await assert.rejects(c.signTransaction("hot 0", "0x02"), /key: want/);
  await assert.rejects(c.signPersonalMessage("hot-0", new Uint8Array(64 * 1024 + 1)), /limit 65536/);
  await assert.rejects(c.signTypedData("hot-0", "[]"), /must be a JSON object/);
  await assert.rejects(c.waitForApproval("a", { timeoutMs: 0 }), /timeoutMs must be a positive/);
});
