// Package txargs decodes the JSON transaction object that wallet stacks
// send to a signer: the argument of eth_signTransaction and
// eth_sendTransaction (Web3Signer, EthSigner, a node's own wallet) and of
// Clef's account_signTransaction, and builds the unsigned [ethtx.Tx] it
// describes. It also encodes a signed transaction back to the JSON that
// go-ethereum's RPC returns ([SignedJSON]).
//
// The object arrives from a process that has not been checked yet (a
// wallet, or whatever reached the agent's socket), and what it says is what
// the enclave will be asked to sign, so it has one reading only.
//
// # Checks
//
// [Parse] refuses, naming the member:
//   - a body longer than [MaxSize], not one JSON object, with a duplicate
//     member (also under encoding/json's case folding) or a member other
//     than from, to, gas, gasPrice, maxFeePerGas, maxPriorityFeePerGas,
//     value, nonce, data, input, accessList, chainId, type,
//     maxFeePerBlobGas, blobVersionedHashes and authorizationList (the
//     names of go-ethereum's TransactionArgs and Clef's SendTxArgs);
//     null for a member means the member is absent, as go-ethereum reads
//     it;
//   - blobs, commitments and proofs (a blob sidecar): the signer signs the
//     transaction, which commits to its blobs by their versioned hashes;
//     the sender wraps the signed transaction with its blobs itself;
//   - a quantity that is not a string "0x" followed by hexadecimal digits
//     (either case) without leading zeros, as go-ethereum's hexutil
//     requires ("0x0" is zero; "0x", "0x01", "0X1" and JSON numbers are
//     refused), of more than 256 bits, or of more than 64 bits for gas,
//     nonce and an authorization's nonce;
//   - byte strings (data, input) that are not "0x" followed by an even
//     number of hexadecimal digits, or longer than [ethtx.MaxDataSize];
//   - addresses that are not 20 bytes of hex, or written in mixed case
//     with a wrong EIP-55 checksum ([ethtx.ParseAddress]);
//   - data and input both present and different;
//   - hashes (storage keys, blob versioned hashes) that are not exactly
//     32 bytes of hex;
//   - access lists, blob hashes and authorization lists longer than the
//     caps of package ethtx, and entries with other members than
//     go-ethereum's: {address, storageKeys} and {chainId, address, nonce,
//     yParity, r, s} (each of these six required, yParity 0 or 1);
//   - a type that is not one ethtx encodes (0 to 4).
//
// # Transaction type
//
// An explicit "type" wins, and every fee or list member present must be a
// field of that type: gasPrice with type 2, maxFeePerGas with a legacy
// transaction, an access list with a legacy one are refused rather than
// dropped. Without "type", [Args.TxType] infers it as go-ethereum does
// (TransactionArgs.ToTransaction and SendTxArgs.ToTransaction): an
// authorization list makes EIP-7702, blob hashes or maxFeePerBlobGas
// EIP-4844, maxFeePerGas or maxPriorityFeePerGas EIP-1559, an access list
// EIP-2930, and otherwise it is legacy. gasPrice together with
// maxFeePerGas or maxPriorityFeePerGas is refused, as go-ethereum does.
// Where go-ethereum's node wallet would silently drop an access list sent
// with gasPrice (it builds a legacy transaction), the type is EIP-2930, as
// Clef, ethers and web3j make it, so that nothing the caller sent is lost.
//
// # Building
//
// [Args.Tx] builds the transaction once every field its type needs is
// present ([Args.Missing] lists the absent ones): value defaults to zero
// and data to empty, as in go-ethereum, and nothing else is guessed; a
// signer in proxy mode fills gas, fees, nonce and chain id from a node
// first. It refuses what go-ethereum's wallet refuses: a chain id of zero (a
// legacy transaction is always EIP-155: a pre-EIP-155 signature would be
// valid on every chain), maxFeePerGas below maxPriorityFeePerGas, a
// contract creation without code, and an empty blob hash or authorization
// list. The transaction is then encoded and decoded again by
// [ethtx.DecodeUnsigned], so it is exactly what the enclave will decode.
package txargs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/strictjson"
)

// MaxSize caps the JSON of one transaction object: twice the largest
// calldata ethtx accepts as hex, with room for full access and
// authorization lists.
const MaxSize = 4*ethtx.MaxDataSize + 256<<10

// Args is a decoded transaction object. A nil field was absent (or null).
type Args struct {
	From *ethtx.Address
	// To is nil for a contract creation.
	To                   *ethtx.Address
	Gas, Nonce           *uint64
	GasPrice             *big.Int
	MaxFeePerGas         *big.Int
	MaxPriorityFeePerGas *big.Int
	Value                *big.Int
	ChainID              *big.Int
	MaxFeePerBlobGas     *big.Int
	// Data is "input", or "data" (both present must be equal); nil when
	// both are absent.
	Data []byte
	// AccessList is not nil when "accessList" was present, even empty.
	AccessList *ethtx.AccessList
	Type       *ethtx.Type
	// AuthorizationList and BlobVersionedHashes are not nil when present,
	// even empty.
	AuthorizationList   []ethtx.Authorization
	BlobVersionedHashes [][32]byte
}

// wireArgs is the object's members as sent; each is checked by hand so
// that an error names the member and says what is wrong.
type wireArgs struct {
	From                 json.RawMessage `json:"from"`
	To                   json.RawMessage `json:"to"`
	Gas                  json.RawMessage `json:"gas"`
	GasPrice             json.RawMessage `json:"gasPrice"`
	MaxFeePerGas         json.RawMessage `json:"maxFeePerGas"`
	MaxPriorityFeePerGas json.RawMessage `json:"maxPriorityFeePerGas"`
	Value                json.RawMessage `json:"value"`
	Nonce                json.RawMessage `json:"nonce"`
	Data                 json.RawMessage `json:"data"`
	Input                json.RawMessage `json:"input"`
	AccessList           json.RawMessage `json:"accessList"`
	ChainID              json.RawMessage `json:"chainId"`
	Type                 json.RawMessage `json:"type"`
	MaxFeePerBlobGas     json.RawMessage `json:"maxFeePerBlobGas"`
	BlobVersionedHashes  json.RawMessage `json:"blobVersionedHashes"`
	AuthorizationList    json.RawMessage `json:"authorizationList"`
	// A blob sidecar, refused with its own reason.
	Blobs       json.RawMessage `json:"blobs"`
	Commitments json.RawMessage `json:"commitments"`
	Proofs      json.RawMessage `json:"proofs"`
}

type wireTuple struct {
	Address     json.RawMessage `json:"address"`
	StorageKeys json.RawMessage `json:"storageKeys"`
}

type wireAuthorization struct {
	ChainID json.RawMessage `json:"chainId"`
	Address json.RawMessage `json:"address"`
	Nonce   json.RawMessage `json:"nonce"`
	YParity json.RawMessage `json:"yParity"`
	R       json.RawMessage `json:"r"`
	S       json.RawMessage `json:"s"`
}

// decodeError is strictjson's error in this package's words, still
// wrapping it (strictjson.ErrTooLarge).
type decodeError struct{ err error }

func (e *decodeError) Error() string {
	return "txargs: " + strings.TrimPrefix(e.err.Error(), "strictjson: ")
}
func (e *decodeError) Unwrap() error { return e.err }

// Parse decodes a transaction object with the checks in the package
// documentation. Errors start with "txargs: " and name the member.
func Parse(raw []byte) (*Args, error) {
	var w wireArgs
	if err := strictjson.Unmarshal(raw, &w, MaxSize); err != nil {
		return nil, &decodeError{err}
	}
	for _, m := range []struct {
		name string
		raw  json.RawMessage
	}{{"blobs", w.Blobs}, {"commitments", w.Commitments}, {"proofs", w.Proofs}} {
		if present(m.raw) {
			return nil, fmt.Errorf("txargs: %s: blob sidecars are not supported: the signer signs the transaction, which commits to its blobs by blobVersionedHashes; send the signed transaction with its blobs yourself", m.name)
		}
	}
	a := new(Args)
	var err error
	if a.From, err = optAddress("from", w.From); err != nil {
		return nil, err
	}
	if a.To, err = optAddress("to", w.To); err != nil {
		return nil, err
	}
	if a.Gas, err = optUint64("gas", w.Gas); err != nil {
		return nil, err
	}
	if a.Nonce, err = optUint64("nonce", w.Nonce); err != nil {
		return nil, err
	}
	for _, q := range []struct {
		name string
		raw  json.RawMessage
		dst  **big.Int
	}{
		{"gasPrice", w.GasPrice, &a.GasPrice},
		{"maxFeePerGas", w.MaxFeePerGas, &a.MaxFeePerGas},
		{"maxPriorityFeePerGas", w.MaxPriorityFeePerGas, &a.MaxPriorityFeePerGas},
		{"value", w.Value, &a.Value},
		{"chainId", w.ChainID, &a.ChainID},
		{"maxFeePerBlobGas", w.MaxFeePerBlobGas, &a.MaxFeePerBlobGas},
	} {
		if !present(q.raw) {
			continue
		}
		if *q.dst, err = quantity(q.name, q.raw, 256); err != nil {
			return nil, err
		}
	}
	data, err := optBytes("data", w.Data)
	if err != nil {
		return nil, err
	}
	input, err := optBytes("input", w.Input)
	if err != nil {
		return nil, err
	}
	switch {
	case data != nil && input != nil && !bytes.Equal(data, input):
		return nil, errors.New(`txargs: "data" and "input" are both set and differ; send the calldata once, as "input"`)
	case input != nil:
		a.Data = input
	default:
		a.Data = data
	}
	if present(w.Type) {
		t, err := quantity("type", w.Type, 64)
		if err != nil {
			return nil, err
		}
		if !t.IsUint64() || !supported(t.Uint64()) {
			return nil, fmt.Errorf("txargs: type: transaction type 0x%x is not supported (want 0x0 to 0x4): %w", t, ethtx.ErrUnsupportedType)
		}
		typ := ethtx.Type(t.Uint64())
		a.Type = &typ
	}
	if present(w.AccessList) {
		if a.AccessList, err = accessList(w.AccessList); err != nil {
			return nil, err
		}
	}
	if present(w.BlobVersionedHashes) {
		if a.BlobVersionedHashes, err = blobHashes(w.BlobVersionedHashes); err != nil {
			return nil, err
		}
	}
	if present(w.AuthorizationList) {
		if a.AuthorizationList, err = authorizationList(w.AuthorizationList); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func supported(t uint64) bool {
	for _, s := range ethtx.Types() {
		if uint64(s) == t {
			return true
		}
	}
	return false
}

// present reports whether a member was sent with a value other than null.
func present(raw json.RawMessage) bool {
	return raw != nil && string(raw) != "null"
}

// str returns the contents of a JSON string without escapes: hex, as
// go-ethereum reads it, never needs one.
func str(name string, raw json.RawMessage, what string) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", fmt.Errorf("txargs: %s: want %s in a JSON string, got %s", name, what, describe(raw))
	}
	s := string(raw[1 : len(raw)-1])
	if strings.IndexByte(s, '\\') >= 0 {
		return "", fmt.Errorf("txargs: %s: want %s, got a string with escapes", name, what)
	}
	return s, nil
}

func describe(raw json.RawMessage) string {
	switch {
	case len(raw) == 0:
		return "nothing"
	case raw[0] == '{':
		return "an object"
	case raw[0] == '[':
		return "an array"
	case raw[0] == 't' || raw[0] == 'f':
		return "a boolean"
	case raw[0] == 'n':
		return "null"
	case raw[0] == '"':
		return "a string"
	}
	return "a number"
}

// quantity decodes a hexutil quantity of at most bits bits.
func quantity(name string, raw json.RawMessage, bits int) (*big.Int, error) {
	s, err := str(name, raw, "a 0x-prefixed hex quantity")
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(s, "0x") {
		return nil, fmt.Errorf("txargs: %s: quantity %q: want a 0x prefix", name, clip(s))
	}
	digits := s[2:]
	switch {
	case digits == "":
		return nil, fmt.Errorf("txargs: %s: quantity %q has no digits (zero is \"0x0\")", name, s)
	case len(digits) > 1 && digits[0] == '0':
		return nil, fmt.Errorf("txargs: %s: quantity %q has leading zeros", name, clip(s))
	case len(digits) > bits/4:
		return nil, fmt.Errorf("txargs: %s: quantity of %d hex digits exceeds %d bits", name, len(digits), bits)
	}
	if !isHex(digits) {
		return nil, fmt.Errorf("txargs: %s: quantity %q is not hexadecimal", name, clip(s))
	}
	x, _ := new(big.Int).SetString(digits, 16)
	return x, nil
}

func optUint64(name string, raw json.RawMessage) (*uint64, error) {
	if !present(raw) {
		return nil, nil
	}
	x, err := quantity(name, raw, 64)
	if err != nil {
		return nil, err
	}
	u := x.Uint64()
	return &u, nil
}

// hexBytes decodes "0x" followed by an even number of hex digits; a fixed
// want (> 0) is the exact length in bytes.
func hexBytes(name string, raw json.RawMessage, want int) ([]byte, error) {
	what := "0x-prefixed hex bytes"
	if want > 0 {
		what = fmt.Sprintf("%d bytes of 0x-prefixed hex", want)
	}
	s, err := str(name, raw, what)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(s, "0x") {
		return nil, fmt.Errorf("txargs: %s: want %s", name, what)
	}
	digits := s[2:]
	switch {
	case len(digits)%2 != 0:
		return nil, fmt.Errorf("txargs: %s: odd number of hex digits (%d)", name, len(digits))
	case want > 0 && len(digits) != 2*want:
		return nil, fmt.Errorf("txargs: %s: want %d bytes, got %d", name, want, len(digits)/2)
	case len(digits)/2 > ethtx.MaxDataSize:
		return nil, fmt.Errorf("txargs: %s: %d bytes, limit is %d", name, len(digits)/2, ethtx.MaxDataSize)
	case !isHex(digits):
		return nil, fmt.Errorf("txargs: %s: not hexadecimal", name)
	}
	b := make([]byte, len(digits)/2)
	for i := range b {
		b[i] = unhex(digits[2*i])<<4 | unhex(digits[2*i+1])
	}
	return b, nil
}

func optBytes(name string, raw json.RawMessage) ([]byte, error) {
	if !present(raw) {
		return nil, nil
	}
	return hexBytes(name, raw, 0)
}

func hash32(name string, raw json.RawMessage) ([32]byte, error) {
	b, err := hexBytes(name, raw, 32)
	if err != nil {
		return [32]byte{}, err
	}
	return [32]byte(b), nil
}

func address(name string, raw json.RawMessage) (ethtx.Address, error) {
	s, err := str(name, raw, "a 0x-prefixed address")
	if err != nil {
		return ethtx.Address{}, err
	}
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		return ethtx.Address{}, fmt.Errorf("txargs: %s: %w", name, err)
	}
	return a, nil
}

func optAddress(name string, raw json.RawMessage) (*ethtx.Address, error) {
	if !present(raw) {
		return nil, nil
	}
	a, err := address(name, raw)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// array splits a JSON array (already checked by strictjson) into its
// elements, at most limit of them.
func array(name string, raw json.RawMessage, limit int) ([]json.RawMessage, error) {
	if raw[0] != '[' {
		return nil, fmt.Errorf("txargs: %s: want an array, got %s", name, describe(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, fmt.Errorf("txargs: %s: %w", name, err)
	}
	if len(elems) > limit {
		return nil, fmt.Errorf("txargs: %s: %d entries, limit is %d", name, len(elems), limit)
	}
	return elems, nil
}

// object decodes one element of a list strictly into v.
func object(name string, raw json.RawMessage, v any) error {
	if raw[0] != '{' {
		return fmt.Errorf("txargs: %s: want an object, got %s", name, describe(raw))
	}
	if err := strictjson.Unmarshal(raw, v, MaxSize); err != nil {
		return fmt.Errorf("txargs: %s: %s", name, strings.TrimPrefix(err.Error(), "strictjson: "))
	}
	return nil
}

func required(name string, raw json.RawMessage) error {
	if !present(raw) {
		return fmt.Errorf("txargs: %s: missing", name)
	}
	return nil
}

func accessList(raw json.RawMessage) (*ethtx.AccessList, error) {
	elems, err := array("accessList", raw, ethtx.MaxAccessListEntries)
	if err != nil {
		return nil, err
	}
	list := make(ethtx.AccessList, len(elems))
	keys := 0
	for i, el := range elems {
		name := fmt.Sprintf("accessList[%d]", i)
		var w wireTuple
		if err := object(name, el, &w); err != nil {
			return nil, err
		}
		if err := required(name+".address", w.Address); err != nil {
			return nil, err
		}
		if list[i].Address, err = address(name+".address", w.Address); err != nil {
			return nil, err
		}
		// go-ethereum reads absent or null storage keys as none.
		if !present(w.StorageKeys) {
			continue
		}
		ks, err := array(name+".storageKeys", w.StorageKeys, ethtx.MaxAccessListStorageKeys)
		if err != nil {
			return nil, err
		}
		if keys += len(ks); keys > ethtx.MaxAccessListStorageKeys {
			return nil, fmt.Errorf("txargs: accessList: more than %d storage keys", ethtx.MaxAccessListStorageKeys)
		}
		if len(ks) > 0 {
			list[i].StorageKeys = make([][32]byte, len(ks))
		}
		for j, k := range ks {
			if list[i].StorageKeys[j], err = hash32(fmt.Sprintf("%s.storageKeys[%d]", name, j), k); err != nil {
				return nil, err
			}
		}
	}
	return &list, nil
}

func blobHashes(raw json.RawMessage) ([][32]byte, error) {
	elems, err := array("blobVersionedHashes", raw, ethtx.MaxBlobVersionedHashes)
	if err != nil {
		return nil, err
	}
	hashes := make([][32]byte, len(elems))
	for i, el := range elems {
		if hashes[i], err = hash32(fmt.Sprintf("blobVersionedHashes[%d]", i), el); err != nil {
			return nil, err
		}
	}
	return hashes, nil
}

func authorizationList(raw json.RawMessage) ([]ethtx.Authorization, error) {
	elems, err := array("authorizationList", raw, ethtx.MaxAuthorizations)
	if err != nil {
		return nil, err
	}
	list := make([]ethtx.Authorization, len(elems))
	for i, el := range elems {
		name := fmt.Sprintf("authorizationList[%d]", i)
		var w wireAuthorization
		if err := object(name, el, &w); err != nil {
			return nil, err
		}
		for _, m := range []struct {
			name string
			raw  json.RawMessage
		}{{"chainId", w.ChainID}, {"address", w.Address}, {"nonce", w.Nonce}, {"yParity", w.YParity}, {"r", w.R}, {"s", w.S}} {
			if err := required(name+"."+m.name, m.raw); err != nil {
				return nil, err
			}
		}
		a := &list[i]
		if a.ChainID, err = quantity(name+".chainId", w.ChainID, 256); err != nil {
			return nil, err
		}
		if a.Address, err = address(name+".address", w.Address); err != nil {
			return nil, err
		}
		nonce, err := quantity(name+".nonce", w.Nonce, 64)
		if err != nil {
			return nil, err
		}
		a.Nonce = nonce.Uint64()
		y, err := quantity(name+".yParity", w.YParity, 64)
		if err != nil {
			return nil, err
		}
		if y.Cmp(big.NewInt(1)) > 0 {
			return nil, fmt.Errorf("txargs: %s.yParity: want 0x0 or 0x1, got 0x%x", name, y)
		}
		a.YParity = uint8(y.Uint64())
		r, err := quantity(name+".r", w.R, 256)
		if err != nil {
			return nil, err
		}
		s, err := quantity(name+".s", w.S, 256)
		if err != nil {
			return nil, err
		}
		r.FillBytes(a.R[:])
		s.FillBytes(a.S[:])
	}
	return list, nil
}

func isHex(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// clip shortens what is echoed of a bad value.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// TxType returns the transaction type: the explicit "type" when present,
// checked against the members present, else the type inferred as the
// package documentation says. The error names the conflicting members.
func (a *Args) TxType() (ethtx.Type, error) {
	has1559 := a.MaxFeePerGas != nil || a.MaxPriorityFeePerGas != nil
	hasBlob := a.BlobVersionedHashes != nil || a.MaxFeePerBlobGas != nil
	hasAuth := a.AuthorizationList != nil
	if a.Type != nil {
		t := *a.Type
		var wrong string
		switch {
		case a.GasPrice != nil && t != ethtx.TypeLegacy && t != ethtx.TypeAccessList:
			wrong = "gasPrice (the type prices gas by maxFeePerGas and maxPriorityFeePerGas)"
		case a.MaxFeePerGas != nil && (t == ethtx.TypeLegacy || t == ethtx.TypeAccessList):
			wrong = "maxFeePerGas (the type prices gas by gasPrice)"
		case a.MaxPriorityFeePerGas != nil && (t == ethtx.TypeLegacy || t == ethtx.TypeAccessList):
			wrong = "maxPriorityFeePerGas (the type prices gas by gasPrice)"
		case a.AccessList != nil && t == ethtx.TypeLegacy:
			wrong = "accessList"
		case a.MaxFeePerBlobGas != nil && t != ethtx.TypeBlob:
			wrong = "maxFeePerBlobGas"
		case a.BlobVersionedHashes != nil && t != ethtx.TypeBlob:
			wrong = "blobVersionedHashes"
		case hasAuth && t != ethtx.TypeSetCode:
			wrong = "authorizationList"
		}
		if wrong != "" {
			return 0, fmt.Errorf("txargs: type 0x%x (%s) has no field %s", uint8(t), t, wrong)
		}
		return t, nil
	}
	switch {
	case a.GasPrice != nil && has1559:
		return 0, errors.New("txargs: both gasPrice and maxFeePerGas or maxPriorityFeePerGas are set; send one fee mechanism")
	case hasBlob && hasAuth:
		return 0, errors.New("txargs: both blob fields (blobVersionedHashes, maxFeePerBlobGas) and authorizationList are set; no transaction type has both")
	case a.GasPrice != nil && (hasBlob || hasAuth):
		return 0, errors.New("txargs: gasPrice is set with blob or authorization fields, whose transaction types price gas by maxFeePerGas and maxPriorityFeePerGas")
	case hasAuth:
		return ethtx.TypeSetCode, nil
	case hasBlob:
		return ethtx.TypeBlob, nil
	case has1559:
		return ethtx.TypeDynamicFee, nil
	case a.AccessList != nil:
		return ethtx.TypeAccessList, nil
	}
	return ethtx.TypeLegacy, nil
}

// Missing returns the JSON names of the members that the transaction's
// type needs and that are absent, in the order of the object's members;
// nil when none is, or when the type cannot be told (TxType's error).
func (a *Args) Missing() []string {
	t, err := a.TxType()
	if err != nil {
		return nil
	}
	var m []string
	add := func(absent bool, name string) {
		if absent {
			m = append(m, name)
		}
	}
	add(a.To == nil && (t == ethtx.TypeBlob || t == ethtx.TypeSetCode), "to")
	add(a.Gas == nil, "gas")
	if t == ethtx.TypeLegacy || t == ethtx.TypeAccessList {
		add(a.GasPrice == nil, "gasPrice")
	} else {
		add(a.MaxFeePerGas == nil, "maxFeePerGas")
		add(a.MaxPriorityFeePerGas == nil, "maxPriorityFeePerGas")
	}
	add(a.Nonce == nil, "nonce")
	add(a.ChainID == nil, "chainId")
	if t == ethtx.TypeBlob {
		add(a.MaxFeePerBlobGas == nil, "maxFeePerBlobGas")
		add(a.BlobVersionedHashes == nil, "blobVersionedHashes")
	}
	if t == ethtx.TypeSetCode {
		add(a.AuthorizationList == nil, "authorizationList")
	}
	return m
}

// Tx builds the unsigned transaction, with the rules in the package
// documentation. It does not change a, and the Tx shares no memory with
// it.
func (a *Args) Tx() (*ethtx.Tx, error) {
	t, err := a.TxType()
	if err != nil {
		return nil, err
	}
	if m := a.Missing(); len(m) > 0 {
		return nil, fmt.Errorf("txargs: missing %s for the %s transaction", strings.Join(quoteAll(m), ", "), t)
	}
	switch {
	case a.ChainID.Sign() == 0:
		return nil, errors.New("txargs: chainId: must not be zero (a transaction signed without a chain id is valid on every chain)")
	case a.To == nil && len(a.Data) == 0:
		return nil, errors.New(`txargs: contract creation without code: "to" is absent and there is no "input" or "data"`)
	case t == ethtx.TypeBlob && len(a.BlobVersionedHashes) == 0:
		return nil, errors.New("txargs: blobVersionedHashes: a blob transaction needs at least one")
	case t == ethtx.TypeSetCode && len(a.AuthorizationList) == 0:
		return nil, errors.New("txargs: authorizationList: an EIP-7702 transaction needs at least one authorization")
	case a.MaxFeePerGas != nil && a.MaxFeePerGas.Cmp(a.MaxPriorityFeePerGas) < 0:
		return nil, fmt.Errorf("txargs: maxFeePerGas (%s) is below maxPriorityFeePerGas (%s)", a.MaxFeePerGas, a.MaxPriorityFeePerGas)
	}
	tx := &ethtx.Tx{
		Type:                 t,
		ChainID:              a.ChainID,
		Nonce:                *a.Nonce,
		GasPrice:             a.GasPrice,
		MaxPriorityFeePerGas: a.MaxPriorityFeePerGas,
		MaxFeePerGas:         a.MaxFeePerGas,
		GasLimit:             *a.Gas,
		To:                   a.To,
		Value:                a.Value,
		Data:                 a.Data,
	}
	if tx.Value == nil {
		tx.Value = new(big.Int)
	}
	if t != ethtx.TypeLegacy && a.AccessList != nil {
		tx.AccessList = *a.AccessList
	}
	if t == ethtx.TypeBlob {
		tx.MaxFeePerBlobGas = a.MaxFeePerBlobGas
		tx.BlobVersionedHashes = a.BlobVersionedHashes
	}
	if t == ethtx.TypeSetCode {
		tx.AuthorizationList = a.AuthorizationList
	}
	// The decoded copy is the transaction the enclave will see, and owns
	// its memory.
	out, err := ethtx.DecodeUnsigned(tx.EncodeUnsigned())
	if err != nil {
		return nil, fmt.Errorf("txargs: %w", err)
	}
	return out, nil
}

func quoteAll(names []string) []string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = `"` + n + `"`
	}
	return q
}
