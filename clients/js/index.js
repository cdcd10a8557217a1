// @nitrosign/client: the JavaScript client of nitrosign's HTTP API.
//
// This entry point needs nothing but Node: request stamps, the REST client
// and its errors. The ethers v6 Signer is in "@nitrosign/client/ethers" and
// the viem Account in "@nitrosign/client/viem", so that neither library is
// loaded unless used.

export { NitrosignClient, DEFAULT_TIMEOUT_MS, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_APPROVAL_POLL_INTERVAL_MS, MIN_APPROVAL_POLL_INTERVAL_MS } from "./src/client.js";
export { NitrosignError, PendingApprovalError } from "./src/errors.js";
export { STAMP_HEADER, MAX_STAMP_HEADER_SIZE, createStamp, verifyStamp, parseStampKey, stampSignerFromKeyObject, generateStampKey } from "./src/stamp.js";
export { MAX_BODY_SIZE, MAX_REQUEST_ID_LENGTH, MAX_KEY_LENGTH, MAX_PERSONAL_MESSAGE_SIZE, buildSignBody, newRequestID, approvalDigest, compactJSON } from "./src/request.js";
export { parseEnclaveSignature, toRecoverableSignature } from "./src/signature.js";
