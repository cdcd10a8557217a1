// Package nsm is the enclave's seam to the Nitro Security Module, the
// device through which an AWS Nitro enclave obtains attestation documents
// and hardware randomness.
//
// Everything above this package sees a [Device], so the enclave's code is
// the same whether the module is the real /dev/nsm or the simulator that
// `nitrosign dev` and the tests run (internal/sim/nsmsim). This package is
// linked into the enclave binary and therefore depends only on the standard
// library, github.com/hf/nsm, github.com/fxamacker/cbor and this module's
// proto, transport, internal/strictcbor and enclave/nsm/nsmwire packages.
// It holds the client side of the remote protocol only: the wire format is
// package nsmwire, shared with the server, and the server
// (nsmsim.ServeConn) lives with the simulator, which the enclave binary
// never links.
//
// # Devices
//
//   - [Open] opens /dev/nsm through github.com/hf/nsm (Linux only; elsewhere
//     it fails with [ErrUnsupported]). Attestation is the NSM Attestation
//     request; randomness is the NSM GetRandom request, repeated until the
//     caller's buffer is full.
//   - [NewRemote] and [DialRemote] speak the remote protocol below to a
//     simulated NSM over a connection of the vsock simulator.
//   - [OpenSpec] chooses between them from the enclave's -nsm flag:
//     "/dev/nsm" ([DefaultSpec]) or "vsock:CID:PORT".
//
// An [AttestRequest] field that is empty is absent: the real device then
// writes null into the document, as AWS documents show for fields a caller
// did not supply. Each field is at most [MaxFieldSize] (1024) bytes, the
// limit of the NSM itself; every Device checks this before doing anything.
//
// # Why a remote NSM is safe to have in the enclave binary
//
// The remote device exists so that the very binary that runs on Nitro can
// run on a laptop against a simulated NSM. It does not let a host fake an
// attestation on a production deployment, because:
//
//   - The device is chosen by the enclave's command line, which is part of
//     the enclave image (the Dockerfile's CMD) and so of its measurement,
//     PCR0. The production image says "-nsm /dev/nsm" (the default); a host
//     cannot change an enclave's command line without changing PCR0, and an
//     image that asks for a remote NSM is a different image, with a
//     different PCR0, that the KMS key policy and every verifier refuse.
//   - A host that serves a fake NSM on the parent's vsock port reaches no
//     production enclave: the production image never connects to it.
//   - Even an image that did connect would gain nothing from it: documents
//     of a simulated NSM chain to the simulator's test root, not to the AWS
//     Nitro Enclaves root G1, and KMS (like the project's verifier in
//     production mode) verifies documents against the AWS root.
//
// # Remote protocol
//
// The remote protocol runs over one stream connection (a vsock, or a
// connection of the vsock simulator). The client sends one request and
// waits for its response before sending the next; there is no multiplexing
// and no request id. Each message is one frame of package proto (a 4-byte
// big-endian length, then the payload), the payload one CBOR map with
// unsigned-integer keys in the core deterministic encoding of RFC 8949
// section 4.2.1, every field present (an absent byte string is the empty
// byte string), and no other key. Both sides refuse anything else: a
// non-canonical encoding, an unknown or duplicate key, a tag, an
// indefinite length, trailing bytes. Package nsmwire holds this format
// (messages, limits, encoding and decoding) for both sides; the server is
// nsmsim.ServeConn.
//
//	request (frame payload at most 4 KiB)
//	  1: version     uint, always 1 (RemoteVersion)
//	  2: op          uint, 1 = attest, 2 = random
//	  3: nonce       bytes (..1024), attest only, else empty
//	  4: user_data   bytes (..1024), attest only, else empty
//	  5: public_key  bytes (..1024), attest only, else empty
//	  6: length      uint, random only: 1..MaxRandomChunk (4096); attest: 0
//
//	response (frame payload at most MaxDocumentSize + 1 KiB)
//	  1: version     uint, always 1
//	  2: op          uint, the request's op; 0 only in an error answering a
//	                 request that could not be decoded
//	  3: document    bytes, attest: the COSE_Sign1 document, 1..MaxDocumentSize (16 KiB); else empty
//	  4: random      bytes, random: exactly length bytes; else empty
//	  5: error       text (..512 bytes); non-empty means the request failed,
//	                 and then document and random are empty
//
// A refusal by the device (an error response to a well-formed request)
// leaves the connection usable; the client returns it as a [*RemoteError].
// A malformed request is answered with an error response, after which the
// server closes the connection; a client that reads a malformed or
// unexpected response closes the connection, since it can no longer know
// which response answers which request. A device made by [DialRemote]
// dials again at its next request; one made by [NewRemote] stays broken.
//
// A future incompatible change bumps the version; a server answers a
// request of another version with an error response naming the versions
// it speaks.
package nsm
