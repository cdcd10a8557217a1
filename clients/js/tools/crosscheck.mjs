// crosscheck.mjs: the JavaScript side of node_test.go's cross-checks with
// the Go packages (stamp, api, api/request). It reads a JSON array of cases
// on stdin and writes a JSON array of results, one per case, on stdout:
//
//   {"op":"stamp","pem":PEM,"body_hex":HEX}          -> {"header"}
//   {"op":"verify","header":H,"body_hex":HEX}        -> {"scheme","public_key"} or {"error"}
//   {"op":"digest","body_hex":HEX}                   -> {"digest"}
//   {"op":"compact","text":JSON}                     -> {"compact"} or {"error"}
//   {"op":"body","key","request_id","timestamp_ms", and one of
//     "unsigned_hex","message_hex","typed_data"}     -> {"body_hex"} or {"error"}
//
// It is a test tool, not part of the package.

import { approvalDigest, buildSignBody, compactJSON, createStamp, parseStampKey, verifyStamp } from "../index.js";

const chunks = [];
for await (const c of process.stdin) {
  chunks.push(c);
}
const cases = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const out = [];
for (const c of cases) {
  try {
    const body = c.body_hex === undefined ? undefined : new Uint8Array(Buffer.from(c.body_hex, "hex"));
    switch (c.op) {
      case "stamp":
        out.push({ header: await createStamp(parseStampKey(c.pem), body) });
        break;
      case "verify": {
        const k = verifyStamp(c.header, body);
        out.push({ scheme: k.scheme, public_key: Buffer.from(k.publicKey).toString("hex") });
        break;
      }
      case "digest":
        out.push({ digest: approvalDigest(body) });
        break;
      case "compact":
        out.push({ compact: compactJSON(c.text) });
        break;
      case "body": {
        let payload;
        if (c.unsigned_hex !== undefined) {
          payload = { eth_transaction: { unsigned: "0x" + c.unsigned_hex } };
        } else if (c.message_hex !== undefined) {
          payload = { eth_personal_message: { message: "0x" + c.message_hex } };
        } else {
          const { typedDataJSON } = await import("../src/request.js");
          payload = { eth_typed_data: typedDataJSON(c.typed_data) };
        }
        const b = buildSignBody({ requestId: c.request_id, timestampMs: c.timestamp_ms, key: c.key, payload });
        out.push({ body_hex: Buffer.from(b).toString("hex") });
        break;
      }
      default:
        throw new Error(`unknown op ${JSON.stringify(c.op)}`);
    }
  } catch (err) {
    out.push({ error: err instanceof Error ? err.message : String(err) });
  }
}
process.stdout.write(JSON.stringify(out));
