// Unit tests of sign request bodies, request ids, the compact form, the
// approval digest and the enclave's signature form.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MAX_BODY_SIZE, approvalDigest, buildSignBody, compactJSON, newRequestID, parseEnclaveSignature, toRecoverableSignature } from "../index.js";
import { checkKey, checkRequestID, payloadHex, typedDataJSON } from "../src/request.js";

const dec = (b) => new TextDecoder().decode(b);

test("request ids", () => {
  const seen = new Set();
  for (let i = 0; i < 100; i++) {
    const id = newRequestID();
    assert.match(id, /^[0-9a-f]{32}$/);
    checkRequestID(id);
    seen.add(id);
  }
  assert.equal(seen.size, 100);
  assert.equal(newRequestID((n) => new Uint8Array(n).fill(0xab)), "ab".repeat(16));
  assert.throws(() => newRequestID(() => new Uint8Array(3)), /no 16 bytes/);
  for (const [name, id, ok] of [
    ["all allowed characters", "aZ09._:-", true],
    ["128 characters", "a".repeat(128), true],
    ["empty", "", false],
    ["129 characters", "a".repeat(129), false],
    ["space", "a b", false],
    ["slash", "a/b", false],
    ["non-ASCII", "é", false],
    ["not a string", 5, false],
  ]) {
    if (ok) {
      assert.doesNotThrow(() => checkRequestID(id), name);
    } else {
      assert.throws(() => checkRequestID(id), /request_id: want 1 to 128 characters/, name);
    }
  }
});

test("keys", () => {
  for (const [name, key, ok] of [
    ["id", "hot-0", true],
    ["address", "0x43065A1FC832E68379e95dB12AE4b76F57813A49", true],
    ["128 characters", "k".repeat(128), true],
    ["empty", "", false],
    ["129 characters", "k".repeat(129), false],
    ["space", "hot 0", false],
    ["control character", "hot\n0", false],
    ["non-ASCII", "hÖt", false],
  ]) {
    if (ok) {
      assert.doesNotThrow(() => checkKey(key), name);
    } else {
      assert.throws(() => checkKey(key), /key: want 1 to 128 printable ASCII/, name);
    }
  }
});

test("payload hex", () => {
  assert.equal(payloadHex("f", new Uint8Array([0, 0xab])), "0x00ab");
  assert.equal(payloadHex("f", "0xABcd"), "0xabcd");
  for (const [name, v, want] of [
    ["empty bytes", new Uint8Array(0), /f: empty/],
    ["bare 0x", "0x", /f: want "0x" and a non-empty/],
    ["odd", "0xabc", /non-empty, even/],
    ["0X", "0XAB", /non-empty, even/],
    ["whitespace", "0xab ", /non-empty, even/],
    ["number", 5, /want a Uint8Array/],
  ]) {
    assert.throws(() => payloadHex("f", v), want, name);
  }
});

test("sign bodies, byte for byte", () => {
  const base = { requestId: "r-1", timestampMs: 1795261861422, key: "hot-0" };
  for (const [name, payload, want] of [
    [
      "transaction",
      { eth_transaction: { unsigned: "0x02c0" } },
      '{"request_id":"r-1","timestamp_ms":1795261861422,"key":"hot-0","eth_transaction":{"unsigned":"0x02c0"}}',
    ],
    [
      "personal message",
      { eth_personal_message: { message: "0x68656c6c6f" } },
      '{"request_id":"r-1","timestamp_ms":1795261861422,"key":"hot-0","eth_personal_message":{"message":"0x68656c6c6f"}}',
    ],
    [
      "typed data, text kept as written",
      { eth_typed_data: typedDataJSON('{ "domain" : {"chainId": 123456789012345678901234567890}, "s": "a b" }') },
      '{"request_id":"r-1","timestamp_ms":1795261861422,"key":"hot-0","eth_typed_data":{"domain":{"chainId":123456789012345678901234567890},"s":"a b"}}',
    ],
    [
      "typed data object, bigints as decimal strings",
      { eth_typed_data: typedDataJSON({ domain: { chainId: 1n }, message: { n: "é" } }) },
      '{"request_id":"r-1","timestamp_ms":1795261861422,"key":"hot-0","eth_typed_data":{"domain":{"chainId":"1"},"message":{"n":"é"}}}',
    ],
  ]) {
    assert.equal(dec(buildSignBody({ ...base, payload })), want, name);
  }
  for (const [name, r, want] of [
    ["no payload", { ...base, payload: {} }, /exactly one payload/],
    ["two payloads", { ...base, payload: { eth_transaction: { unsigned: "0x02" }, eth_personal_message: { message: "0x01" } } }, /exactly one payload/],
    ["unknown payload", { ...base, payload: { eth_raw: "0x01" } }, /unknown payload "eth_raw"/],
    ["zero timestamp", { ...base, timestampMs: 0, payload: { eth_transaction: { unsigned: "0x02" } } }, /timestamp_ms/],
    ["fractional timestamp", { ...base, timestampMs: 1.5, payload: { eth_transaction: { unsigned: "0x02" } } }, /timestamp_ms/],
    ["bad id", { ...base, requestId: "a b", payload: { eth_transaction: { unsigned: "0x02" } } }, /request_id/],
    ["bad key", { ...base, key: "", payload: { eth_transaction: { unsigned: "0x02" } } }, /key: want/],
    ["too large", { ...base, payload: { eth_transaction: { unsigned: "0x" + "00".repeat(MAX_BODY_SIZE / 2) } } }, /limit 262144/],
  ]) {
    assert.throws(() => buildSignBody(r), want, name);
  }
  for (const [name, v, want] of [
    ["array text", "[1]", /must be a JSON object/],
    ["not JSON", "{", SyntaxError],
    ["trailing data", '{"a":1} x', SyntaxError],
    ["array", [1], /want a JSON object/],
    ["null", null, /want a JSON object/],
  ]) {
    assert.throws(() => typedDataJSON(v), want, name);
  }
});

test("compact JSON, as Go's json.Compact", () => {
  for (const [name, text, want] of [
    ["already compact", '{"a":[1,2]}', '{"a":[1,2]}'],
    ["spaces, tabs, newlines", ' {\n\t"a" : [ 1 , 2 ]\r\n} ', '{"a":[1,2]}'],
    ["whitespace inside strings kept", '{"a b": " c\\td "}', '{"a b":" c\\td "}'],
    ["escaped quote", '{"a": "x\\" y"}', '{"a":"x\\" y"}'],
    ["escaped backslash before quote", '{"a": "x\\\\", "b" : 1}', '{"a":"x\\\\","b":1}'],
    ["unicode escapes kept", '{"a": "\\u0041 "}', '{"a":"\\u0041 "}'],
  ]) {
    assert.equal(compactJSON(text), want, name);
  }
  assert.throws(() => compactJSON("{"), SyntaxError);
});

test("approval digest", () => {
  const body = '{"request_id":"r1","timestamp_ms":1,"key":"hot-0","eth_personal_message":{"message":"0x01"}}';
  const h = createHash("sha256").update(body).digest();
  const want = "0x" + createHash("sha256").update(Buffer.concat([Buffer.from("nitrosign approval digest v2\n"), h])).digest("hex");
  assert.equal(approvalDigest(new TextEncoder().encode(body)), want);
  assert.equal(approvalDigest(new TextEncoder().encode(body.replace(",", " ,\n "))), want, "whitespace does not change it");
  assert.notEqual(approvalDigest(new TextEncoder().encode(body.replace("r1", "r 1"))), want, "whitespace inside a string does");
});

test("the enclave's signatures", () => {
  const r = "11".repeat(32);
  const lowS = "22".repeat(32);
  const highS = "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1"; // n/2 + 1
  const maxS = "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"; // n/2
  assert.deepEqual(parseEnclaveSignature(`0x${r}${lowS}01`), { r: `0x${r}`, s: `0x${lowS}`, yParity: 1 });
  assert.equal(toRecoverableSignature(`0x${r}${lowS}00`), `0x${r}${lowS}1b`);
  assert.equal(toRecoverableSignature(`0x${r}${maxS}01`), `0x${r}${maxS}1c`);
  for (const [name, sig, want] of [
    ["v 27", `0x${r}${lowS}1b`, /y-parity of 0 or 1/],
    ["high s", `0x${r}${highS}00`, /high s/],
    ["zero r", `0x${"00".repeat(32)}${lowS}00`, /out of range/],
    ["short", `0x${r}${lowS}`, /65 bytes/],
    ["no 0x", `${r}${lowS}00`, /65 bytes/],
    ["not a string", 5, /65 bytes/],
  ]) {
    assert.throws(() => parseEnclaveSignature(sig), want, name);
  }
});
