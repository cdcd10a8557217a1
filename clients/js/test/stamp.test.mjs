// Unit tests of request stamps: the RFC 8032 vector through a stamp, the
// canonical header format, strict parsing of headers and keys.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { MAX_STAMP_HEADER_SIZE, createStamp, generateStampKey, parseStampKey, stampSignerFromKeyObject, verifyStamp } from "../index.js";

// RFC 8032 §7.1 TEST 1: secret key, public key, signature of the empty message.
const RFC_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const RFC_PUB = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const RFC_SIG =
  "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

function ed25519PEM(seedHex) {
  const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(seedHex, "hex")]);
  return `-----BEGIN PRIVATE KEY-----\n${der.toString("base64")}\n-----END PRIVATE KEY-----\n`;
}

const enc = (s) => new TextEncoder().encode(s);
const header = (obj) => Buffer.from(typeof obj === "string" ? obj : JSON.stringify(obj)).toString("base64url");

test("ed25519 stamp of the RFC 8032 vector", async () => {
  const signer = parseStampKey(ed25519PEM(RFC_SEED));
  assert.equal(signer.scheme, "ed25519");
  assert.equal(Buffer.from(signer.publicKey).toString("hex"), RFC_PUB);
  const h = await createStamp(signer, new Uint8Array(0));
  assert.equal(h, header(`{"scheme":"ed25519","public_key":"${RFC_PUB}","signature":"${RFC_SIG}"}`));
  const k = verifyStamp(h, new Uint8Array(0));
  assert.equal(k.scheme, "ed25519");
  assert.equal(Buffer.from(k.publicKey).toString("hex"), RFC_PUB);
  assert.throws(() => verifyStamp(h, enc(" ")), /signature does not verify/);
});

test("stamps verify over the exact body, both schemes", async () => {
  for (const scheme of ["ed25519", "p256"]) {
    const { signer, pem } = generateStampKey(scheme);
    const again = parseStampKey(pem);
    assert.deepEqual(again.publicKey, signer.publicKey, `${scheme}: the PEM parses to the same key`);
    assert.equal(signer.publicKey.length, scheme === "ed25519" ? 32 : 33);
    const body = enc('{"request_id":"a","timestamp_ms":1,"key":"hot-0","eth_personal_message":{"message":"0x01"}}');
    const h = await createStamp(signer, body);
    assert.ok(h.length <= MAX_STAMP_HEADER_SIZE);
    const k = verifyStamp(h, body);
    assert.equal(k.scheme, scheme);
    assert.deepEqual(k.publicKey, signer.publicKey);
    const tampered = body.slice();
    tampered[tampered.length - 3] ^= 1;
    assert.throws(() => verifyStamp(h, tampered), /signature does not verify/, scheme);
  }
});

test("the key never shows", () => {
  const pem = ed25519PEM(RFC_SEED);
  const signer = parseStampKey(pem);
  const shown = JSON.stringify(signer) + String(Object.keys(signer)) + String(signer);
  assert.ok(!shown.includes(RFC_SEED) && !shown.includes("PRIVATE"), shown);
  assert.ok(JSON.stringify(signer).includes(RFC_PUB));
});

test("verifyStamp refuses malformed headers", async () => {
  const body = enc("{}");
  const signer = parseStampKey(ed25519PEM(RFC_SEED));
  const good = await createStamp(signer, body);
  const js = Buffer.from(good, "base64url").toString();
  const w = JSON.parse(js);
  const cases = [
    ["empty", "", /missing stamp/],
    ["too long", "A".repeat(MAX_STAMP_HEADER_SIZE + 1), /limit 1024/],
    ["padded", good + "==", /not unpadded base64url/],
    ["standard alphabet", good.slice(0, -1) + "+", /not unpadded base64url/],
    ["impossible length", good + "A", /base64url/],
    ["non-canonical last character", good.slice(0, -1) + String.fromCharCode(good.charCodeAt(good.length - 1) + 1), /./],
    ["reordered members", header({ public_key: w.public_key, scheme: w.scheme, signature: w.signature }), /exactly/],
    ["extra member", header({ ...w, x: "y" }), /exactly/],
    ["whitespace", header(js.replace(",", ", ")), /exactly/],
    ["upper-case hex", header({ ...w, signature: w.signature.toUpperCase() }), /exactly/],
    ["unknown scheme", header({ ...w, scheme: "rsa" }), /exactly/],
    ["short key", header({ ...w, public_key: w.public_key.slice(2) }), /public_key is 31 bytes/],
    ["odd key", header({ ...w, public_key: w.public_key.slice(1) }), /odd number/],
    ["empty signature", header({ ...w, signature: "" }), /signature is missing/],
    ["short signature", header({ ...w, signature: w.signature.slice(2) }), /63 bytes, want 64/],
    ["p256 scheme, ed25519 key", header({ ...w, scheme: "p256" }), /public_key is 32 bytes, want 33/],
    ["p256 uncompressed prefix", header({ scheme: "p256", public_key: "04" + "11".repeat(32), signature: "30060201010201 01".replace(" ", "") }), /compressed point/],
    ["p256 not on the curve", header({ scheme: "p256", public_key: "02" + "00".repeat(31) + "05", signature: "3006020101020101" }), /does not verify/],
    ["not JSON", header("not json"), /exactly/],
  ];
  for (const [name, h, want] of cases) {
    assert.throws(() => verifyStamp(h, body), want, name);
  }
  assert.doesNotThrow(() => verifyStamp(good, body));
});

test("parseStampKey refuses what Go's stamp.ParseSignerPEM refuses", () => {
  const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
  const good = ed25519PEM(RFC_SEED);
  const cases = [
    ["empty", "", /no PEM block/],
    ["text before", "key:\n" + good, /no PEM block at the start/],
    ["data after", good + "trailing\n", /invalid PEM, or data after/],
    ["two blocks", good + good, /invalid PEM, or data after/],
    ["SEC 1 EC key", ec.privateKey.export({ format: "pem", type: "sec1" }), /PEM block type "EC PRIVATE KEY"/],
    ["public key", ec.publicKey.export({ format: "pem", type: "spki" }), /PEM block type "PUBLIC KEY"/],
    ["encrypted", ec.privateKey.export({ format: "pem", type: "pkcs8", cipher: "aes-128-cbc", passphrase: "x" }), /ENCRYPTED PRIVATE KEY/],
    ["headers", good.replace("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n"), /PEM headers are not supported/],
    ["secp256k1", k1.privateKey.export({ format: "pem", type: "pkcs8" }), /curve "secp256k1", want P-256/],
    ["rsa", rsa.privateKey.export({ format: "pem", type: "pkcs8" }), /unsupported key type "rsa"/],
    ["bad DER", "-----BEGIN PRIVATE KEY-----\nMAUCAQAwAA==\n-----END PRIVATE KEY-----\n", /not a valid PKCS #8 key/],
    ["oversized", "-----BEGIN PRIVATE KEY-----\n" + "A".repeat(20000), /limit/],
  ];
  for (const [name, pem, want] of cases) {
    assert.throws(
      () => parseStampKey(pem),
      (err) => {
        assert.match(err.message, want, name);
        assert.ok(!err.message.includes(RFC_SEED) && !err.message.includes("MC4CAQAw"), `${name}: the error quotes the key`);
        return true;
      },
      name,
    );
  }
  assert.equal(parseStampKey(new TextEncoder().encode(" \n" + good + "\n\n")).scheme, "ed25519");
  assert.equal(parseStampKey(ec.privateKey.export({ format: "pem", type: "pkcs8" })).scheme, "p256");
  assert.equal(stampSignerFromKeyObject(createPrivateKey(good)).scheme, "ed25519");
  assert.throws(() => stampSignerFromKeyObject(ec.publicKey), /want a private KeyObject/);
});

test("createStamp checks its signer", async () => {
  const { signer } = generateStampKey("ed25519");
  const other = generateStampKey("ed25519").signer;
  const body = enc("{}");
  const cases = [
    ["wrong key", { scheme: "ed25519", publicKey: other.publicKey, sign: (b) => signer.sign(b) }, /does not verify under its own public key/],
    ["short signature", { scheme: "ed25519", publicKey: signer.publicKey, sign: () => new Uint8Array(10) }, /10 bytes, want 64/],
    ["no bytes", { scheme: "ed25519", publicKey: signer.publicKey, sign: () => "sig" }, /no signature bytes/],
    ["bad scheme", { scheme: "rsa", publicKey: signer.publicKey, sign: () => new Uint8Array(64) }, /invalid public key/],
    ["bad key size", { scheme: "p256", publicKey: signer.publicKey, sign: () => new Uint8Array(64) }, /invalid public key/],
  ];
  for (const [name, s, want] of cases) {
    await assert.rejects(createStamp(s, body), want, name);
  }
  await assert.rejects(createStamp(signer, "{}"), /must be a Uint8Array/);
  // An asynchronous signer (a remote key) works.
  const remote = { scheme: signer.scheme, publicKey: signer.publicKey, sign: async (b) => signer.sign(b) };
  verifyStamp(await createStamp(remote, body), body);
});

// A small deterministic PRNG (mulberry32), so that a failure reproduces.
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("mutated headers are refused with a stamp error, never accepted", async () => {
  const body = new TextEncoder().encode('{"request_id":"m","timestamp_ms":1,"key":"hot-0","eth_transaction":{"unsigned":"0x02c0"}}');
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ {}\":,";
  for (const scheme of ["ed25519", "p256"]) {
    const good = await createStamp(generateStampKey(scheme).signer, body);
    const js = Buffer.from(good, "base64url").toString();
    const rand = prng(scheme === "ed25519" ? 1 : 2);
    const pick = (n) => Math.floor(rand() * n);
    for (let i = 0; i < 3000; i++) {
      let h;
      switch (i % 4) {
        case 0: { // one character of the header changed
          const at = pick(good.length);
          h = good.slice(0, at) + alphabet[pick(alphabet.length)] + good.slice(at + 1);
          break;
        }
        case 1: // cut
          h = good.slice(0, pick(good.length));
          break;
        case 2: { // one character of the JSON changed, then encoded
          const at = pick(js.length);
          h = Buffer.from(js.slice(0, at) + alphabet[pick(alphabet.length)] + js.slice(at + 1)).toString("base64url");
          break;
        }
        default: { // a character inserted into the JSON
          const at = pick(js.length + 1);
          h = Buffer.from(js.slice(0, at) + alphabet[pick(alphabet.length)] + js.slice(at)).toString("base64url");
        }
      }
      let ok = false;
      try {
        verifyStamp(h, body);
        ok = true;
      } catch (err) {
        assert.ok(err instanceof Error && err.message.startsWith("nitrosign: stamp: "), `${h}: ${err}`);
      }
      assert.ok(!ok || h === good, `a mutated header verifies: ${h}`);
    }
  }
});
