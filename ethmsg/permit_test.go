package ethmsg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/internal/fuzzseed"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

// Addresses of the documents below. Mixed-case ones are real mainnet
// contracts (their EIP-55 checksums are checked by ParseTypedData); the
// lower-case ones are made up.
const (
	usdcAddr      = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
	wethAddr      = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
	daiAddr       = "0x6B175474E89094C44Da98b954EedeAC495271d0F"
	routerAddr    = "0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD" // Uniswap Universal Router
	reactorAddr   = "0x6000da47483062A0D734Ba3dc7576Ce6A0B645C4" // UniswapX ExclusiveDutchOrderReactor
	oneInchAddr   = "0x1111111254EEB25477B68fb85Ed929f73A960582"
	ownerAddr     = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"
	attackerAddr  = "0x0000db5c8b030ae20308ac975898e09741e70000"
	otherPermit2  = "0x0000000000225e31d15943971f47ad3022f714fa" // a Permit2 deployed elsewhere
	maxUint160Dec = "1461501637330902918203684832716283019655932542975"
	maxUint48Dec  = "281474976710655"
	maxUint256Dec = "115792089237316195423570985008687907853269984665640564039457584007913129639935"
)

// Type definitions and domains, as the Uniswap Permit2 SDK and USDC's
// FiatTokenV2 define them.
const (
	eip2612DomainType = `"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]`
	usdcDomain        = `{"name":"USD Coin","version":"2","chainId":1,"verifyingContract":"` + usdcAddr + `"}`
	eip2612Type       = `"Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]`

	permit2DomainType    = `"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]`
	permit2Domain        = `{"name":"Permit2","chainId":1,"verifyingContract":"` + Permit2Address + `"}`
	permitDetailsType    = `"PermitDetails":[{"name":"token","type":"address"},{"name":"amount","type":"uint160"},{"name":"expiration","type":"uint48"},{"name":"nonce","type":"uint48"}]`
	permitSingleType     = `"PermitSingle":[{"name":"details","type":"PermitDetails"},{"name":"spender","type":"address"},{"name":"sigDeadline","type":"uint256"}]`
	permitBatchType      = `"PermitBatch":[{"name":"details","type":"PermitDetails[]"},{"name":"spender","type":"address"},{"name":"sigDeadline","type":"uint256"}]`
	tokenPermissionsType = `"TokenPermissions":[{"name":"token","type":"address"},{"name":"amount","type":"uint256"}]`
	permitTransferType   = `"PermitTransferFrom":[{"name":"permitted","type":"TokenPermissions"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]`
	permitBatchXferType  = `"PermitBatchTransferFrom":[{"name":"permitted","type":"TokenPermissions[]"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]`

	// UniswapX's ExclusiveDutchOrder, the witness of its Permit2 orders.
	dutchOrderTypes = `"ExclusiveDutchOrder":[{"name":"info","type":"OrderInfo"},{"name":"decayStartTime","type":"uint256"},{"name":"decayEndTime","type":"uint256"},{"name":"exclusiveFiller","type":"address"},{"name":"exclusivityOverrideBps","type":"uint256"},{"name":"inputToken","type":"address"},{"name":"inputStartAmount","type":"uint256"},{"name":"inputEndAmount","type":"uint256"},{"name":"outputs","type":"DutchOutput[]"}],` +
		`"OrderInfo":[{"name":"reactor","type":"address"},{"name":"swapper","type":"address"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"},{"name":"additionalValidationContract","type":"address"},{"name":"additionalValidationData","type":"bytes"}],` +
		`"DutchOutput":[{"name":"token","type":"address"},{"name":"startAmount","type":"uint256"},{"name":"endAmount","type":"uint256"},{"name":"recipient","type":"address"}]`
)

// typedDoc assembles an eth_signTypedData_v4 document.
func typedDoc(primary, domain, message string, types ...string) string {
	return "{\n" +
		`  "types": {` + "\n    " + strings.Join(types, ",\n    ") + "\n  },\n" +
		`  "primaryType": "` + primary + `",` + "\n" +
		`  "domain": ` + domain + ",\n" +
		`  "message": ` + message + "\n}"
}

var (
	usdcPermitJSON = typedDoc("Permit", usdcDomain,
		`{"owner":"`+ownerAddr+`","spender":"`+oneInchAddr+`","value":"1000000000","nonce":"0","deadline":"1767225600"}`,
		eip2612DomainType, eip2612Type)

	permitSingleJSON = typedDoc("PermitSingle", permit2Domain,
		`{"details":{"token":"`+usdcAddr+`","amount":"1000000000","expiration":"1735689600","nonce":"0"},"spender":"`+routerAddr+`","sigDeadline":"1733099400"}`,
		permit2DomainType, permitSingleType, permitDetailsType)

	// The classic phishing signature: everything, for ever, to the attacker.
	permitSingleDrainJSON = typedDoc("PermitSingle", permit2Domain,
		`{"details":{"token":"`+usdcAddr+`","amount":"`+maxUint160Dec+`","expiration":"`+maxUint48Dec+`","nonce":"3"},"spender":"`+attackerAddr+`","sigDeadline":"`+maxUint256Dec+`"}`,
		permit2DomainType, permitSingleType, permitDetailsType)

	permitBatchJSON = typedDoc("PermitBatch", permit2Domain,
		`{"details":[{"token":"`+usdcAddr+`","amount":"`+maxUint160Dec+`","expiration":"1735689600","nonce":"1"},`+
			`{"token":"`+wethAddr+`","amount":"500000000000000000","expiration":"0","nonce":"7"}],"spender":"`+routerAddr+`","sigDeadline":"1733099400"}`,
		permit2DomainType, permitBatchType, permitDetailsType)

	permitTransferJSON = typedDoc("PermitTransferFrom", permit2Domain,
		`{"permitted":{"token":"`+wethAddr+`","amount":"1000000000000000000"},"spender":"`+routerAddr+`","nonce":"1993352592390226690589184237617364412596","deadline":"1733099400"}`,
		permit2DomainType, permitTransferType, tokenPermissionsType)

	permitBatchTransferJSON = typedDoc("PermitBatchTransferFrom", permit2Domain,
		`{"permitted":[{"token":"`+usdcAddr+`","amount":"`+maxUint256Dec+`"},{"token":"`+usdcAddr+`","amount":"5"}],"spender":"`+attackerAddr+`","nonce":"0","deadline":"1733099400"}`,
		permit2DomainType, permitBatchXferType, tokenPermissionsType)

	// A UniswapX order: a Permit2 witness transfer to the reactor.
	dutchOrderJSON = typedDoc("PermitWitnessTransferFrom", `{"name":"Permit2","chainId":1,"verifyingContract":"`+Permit2Address+`"}`,
		`{"permitted":{"token":"`+usdcAddr+`","amount":"1000000000"},"spender":"`+reactorAddr+`","nonce":"1993352592390226690589184237617364412597","deadline":"1733099400",`+
			`"witness":{"info":{"reactor":"`+reactorAddr+`","swapper":"`+ownerAddr+`","nonce":"1993352592390226690589184237617364412597","deadline":"1733099400","additionalValidationContract":"0x0000000000000000000000000000000000000000","additionalValidationData":"0x"},`+
			`"decayStartTime":"1733099100","decayEndTime":"1733099160","exclusiveFiller":"0x0000000000000000000000000000000000000000","exclusivityOverrideBps":"0","inputToken":"`+usdcAddr+`","inputStartAmount":"1000000000","inputEndAmount":"1000000000",`+
			`"outputs":[{"token":"`+wethAddr+`","startAmount":"300000000000000000","endAmount":"290000000000000000","recipient":"`+ownerAddr+`"}]}}`,
		permit2DomainType,
		`"PermitWitnessTransferFrom":[{"name":"permitted","type":"TokenPermissions"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"},{"name":"witness","type":"ExclusiveDutchOrder"}]`,
		tokenPermissionsType, dutchOrderTypes)

	// Permit2's own test witness, in a batch.
	batchWitnessJSON = typedDoc("PermitBatchWitnessTransferFrom", permit2Domain,
		`{"permitted":[{"token":"`+usdcAddr+`","amount":"10"},{"token":"`+daiAddr+`","amount":"20"}],"spender":"`+routerAddr+`","nonce":"5","deadline":"1733099400","witness":{"value":"1","person":"`+ownerAddr+`","test":true}}`,
		permit2DomainType,
		`"PermitBatchWitnessTransferFrom":[{"name":"permitted","type":"TokenPermissions[]"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"},{"name":"witness","type":"MockWitness"}]`,
		tokenPermissionsType, `"MockWitness":[{"name":"value","type":"uint256"},{"name":"person","type":"address"},{"name":"test","type":"bool"}]`)

	// Permit2 fixes neither the witness's name nor its type: here an
	// atomic bytes32 named order.
	atomicWitnessJSON = typedDoc("PermitWitnessTransferFrom", permit2Domain,
		`{"permitted":{"token":"`+usdcAddr+`","amount":"1"},"spender":"`+routerAddr+`","nonce":"5","deadline":"1733099400","order":"0x`+strings.Repeat("ab", 32)+`"}`,
		permit2DomainType,
		`"PermitWitnessTransferFrom":[{"name":"permitted","type":"TokenPermissions"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"},{"name":"order","type":"bytes32"}]`,
		tokenPermissionsType)
)

// permitString renders a permit in one canonical form for comparisons.
func permitString(p *Permit) string {
	if p == nil {
		return "<nil>"
	}
	addr := func(a *ethtx.Address) string {
		if a == nil {
			return "<nil>"
		}
		return a.Hex()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v %s chain=%v contract=%s owner=%s spender=%s nonce=%v deadline=%v\n",
		p.Kind, p.PrimaryType, p.ChainID, p.VerifyingContract.Hex(), addr(p.Owner), p.Spender.Hex(), p.Nonce, p.Deadline)
	for _, g := range p.Grants {
		fmt.Fprintf(&b, "grant token=%s amount=%v unlimited=%v expiration=%v nonce=%v\n", g.Token.Hex(), g.Amount, g.Unlimited, g.Expiration, g.Nonce)
	}
	if w := p.Witness; w != nil {
		fmt.Fprintf(&b, "witness %s %s", w.Type, w.Name)
		if w.Value != nil {
			fmt.Fprintf(&b, " (%s)", w.Value.Type)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func mustAddr(t testing.TB, s string) ethtx.Address {
	t.Helper()
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func hexAddr(s string) string {
	a, err := ethtx.ParseAddress(s)
	if err != nil {
		panic(err)
	}
	return a.Hex()
}

// writePermitSeed commits a table case to FuzzPermit's corpus (see
// commitSeed).
func writePermitSeed(t *testing.T, name, js string) {
	t.Helper()
	commitSeed(t, "FuzzPermit", name, js)
}

func TestPermit2Address(t *testing.T) {
	if a := mustAddr(t, Permit2Address); a != permit2Address || a.Hex() != Permit2Address {
		t.Fatalf("Permit2Address %s, parsed %s, permit2Address %s", Permit2Address, a.Hex(), permit2Address.Hex())
	}
}

// TestPermitTypeHashes checks the type strings Permit matches against the
// constants the contracts hard-code, computed here from the strings.
func TestPermitTypeHashes(t *testing.T) {
	for _, c := range []struct{ encodeType, typeHash string }{
		{eip2612EncodeType, "6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9"},                                                                  // EIP-2612 PERMIT_TYPEHASH
		{permitDetailsDef, "65626cad6cb96493bf6f5ebea28756c966f023ab9e8a83a7101849d5573b3678"},                                                                   // Permit2 _PERMIT_DETAILS_TYPEHASH
		{permitSingleEncodeType, "f3841cd1ff0085026a6327b620b67997ce40f282c88a8e905a7a5626e310f3d0"},                                                             // _PERMIT_SINGLE_TYPEHASH
		{permitBatchEncodeType, "af1b0d30d2cab0380e68f0689007e3254993c596f2fdd0aaa7f4d04f79440863"},                                                              // _PERMIT_BATCH_TYPEHASH
		{tokenPermissionsDef, "618358ac3db8dc274f0cd8829da7e234bd48cd73c4a740aede1adec9846d06a1"},                                                                // _TOKEN_PERMISSIONS_TYPEHASH
		{permitTransferEncodeType, "939c21a48a8dbe3a9a2404a1d46691e4d39f6583d6ec6b35714604c986d80106"},                                                           // _PERMIT_TRANSFER_FROM_TYPEHASH
		{permitBatchTransferType, "fcf35f5ac6a2c28868dc44c302166470266239195f02b0ee408334829333b766"},                                                            // _PERMIT_BATCH_TRANSFER_FROM_TYPEHASH
		{permit2DomainEncodeType, "8cad95687ba82c2ce50e74f7b754645e5117c3a5bec8151c0726d5857980a866"},                                                            // Permit2 EIP712 _TYPE_HASH
		{"Permit(address holder,address spender,uint256 nonce,uint256 expiry,bool allowed)", "ea2aa0a1be11a07ed86d755c93467f4f82362b452371d1ba94d1715123511acb"}, // DAI, refused
	} {
		if got := hexString(keccak256([]byte(c.encodeType))); got != c.typeHash {
			t.Errorf("keccak256(%q) = %s, want %s", c.encodeType, got, c.typeHash)
		}
	}
}

func TestPermitRecognised(t *testing.T) {
	tests := []struct {
		name string
		js   string
		want string // permitString of the result
		// typeHash is the well-known type hash of the primary type, where
		// there is one (witness types have none).
		typeHash        string
		domainSeparator string // where well known
	}{
		{
			name: "EIP-2612 USDC",
			js:   usdcPermitJSON,
			want: "EIP-2612 Permit chain=1 contract=" + usdcAddr + " owner=" + ownerAddr + " spender=" + oneInchAddr + " nonce=0 deadline=1767225600\n" +
				"grant token=" + usdcAddr + " amount=1000000000 unlimited=false expiration=<nil> nonce=<nil>\n",
			typeHash: "6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9",
			// USDC's DOMAIN_SEPARATOR() on Ethereum mainnet.
			domainSeparator: "06c37168a7db5138defc7866392bb87a741f9b3d104deb5094588ce041cae335",
		},
		{
			name: "EIP-2612 unlimited",
			js:   strings.Replace(usdcPermitJSON, `"value":"1000000000"`, `"value":"`+maxUint256Dec+`"`, 1),
			want: "EIP-2612 Permit chain=1 contract=" + usdcAddr + " owner=" + ownerAddr + " spender=" + oneInchAddr + " nonce=0 deadline=1767225600\n" +
				"grant token=" + usdcAddr + " amount=" + maxUint256Dec + " unlimited=true expiration=<nil> nonce=<nil>\n",
			typeHash: "6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9",
		},
		{
			name: "EIP-2612 domain without version or name",
			js: typedDoc("Permit", `{"chainId":"0x2105","verifyingContract":"`+usdcAddr+`"}`,
				`{"owner":"`+ownerAddr+`","spender":"`+oneInchAddr+`","value":1,"nonce":2,"deadline":3}`,
				`"EIP712Domain":[{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]`, eip2612Type),
			want: "EIP-2612 Permit chain=8453 contract=" + usdcAddr + " owner=" + ownerAddr + " spender=" + oneInchAddr + " nonce=2 deadline=3\n" +
				"grant token=" + usdcAddr + " amount=1 unlimited=false expiration=<nil> nonce=<nil>\n",
			typeHash: "6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9",
		},
		{
			name: "Permit2 PermitSingle",
			js:   permitSingleJSON,
			want: "Permit2 AllowanceTransfer PermitSingle chain=1 contract=" + Permit2Address + " owner=<nil> spender=" + routerAddr + " nonce=<nil> deadline=1733099400\n" +
				"grant token=" + usdcAddr + " amount=1000000000 unlimited=false expiration=1735689600 nonce=0\n",
			typeHash: "f3841cd1ff0085026a6327b620b67997ce40f282c88a8e905a7a5626e310f3d0",
		},
		{
			name: "Permit2 PermitSingle unlimited to an attacker",
			js:   permitSingleDrainJSON,
			want: "Permit2 AllowanceTransfer PermitSingle chain=1 contract=" + Permit2Address + " owner=<nil> spender=" + hexAddr(attackerAddr) + " nonce=<nil> deadline=" + maxUint256Dec + "\n" +
				"grant token=" + usdcAddr + " amount=" + maxUint160Dec + " unlimited=true expiration=" + maxUint48Dec + " nonce=3\n",
			typeHash: "f3841cd1ff0085026a6327b620b67997ce40f282c88a8e905a7a5626e310f3d0",
		},
		{
			name: "Permit2 PermitSingle at another Permit2 deployment",
			js:   strings.Replace(permitSingleJSON, Permit2Address, otherPermit2, 1),
			want: "Permit2 AllowanceTransfer PermitSingle chain=1 contract=" + hexAddr(otherPermit2) + " owner=<nil> spender=" + routerAddr + " nonce=<nil> deadline=1733099400\n" +
				"grant token=" + usdcAddr + " amount=1000000000 unlimited=false expiration=1735689600 nonce=0\n",
			typeHash: "f3841cd1ff0085026a6327b620b67997ce40f282c88a8e905a7a5626e310f3d0",
		},
		{
			name: "Permit2 PermitBatch",
			js:   permitBatchJSON,
			want: "Permit2 AllowanceTransfer PermitBatch chain=1 contract=" + Permit2Address + " owner=<nil> spender=" + routerAddr + " nonce=<nil> deadline=1733099400\n" +
				"grant token=" + usdcAddr + " amount=" + maxUint160Dec + " unlimited=true expiration=1735689600 nonce=1\n" +
				"grant token=" + wethAddr + " amount=500000000000000000 unlimited=false expiration=0 nonce=7\n",
			typeHash: "af1b0d30d2cab0380e68f0689007e3254993c596f2fdd0aaa7f4d04f79440863",
		},
		{
			name: "Permit2 PermitTransferFrom",
			js:   permitTransferJSON,
			want: "Permit2 SignatureTransfer PermitTransferFrom chain=1 contract=" + Permit2Address + " owner=<nil> spender=" + routerAddr + " nonce=1993352592390226690589184237617364412596 deadline=1733099400\n" +
				"grant token=" + wethAddr + " amount=1000000000000000000 unlimited=false expiration=<nil> nonce=<nil>\n",
			typeHash: "939c21a48a8dbe3a9a2404a1d46691e4d39f6583d6ec6b35714604c986d80106",
		},
		{
			name: "Permit2 PermitBatchTransferFrom same token twice",
			js:   permitBatchTransferJSON,
			want: "Permit2 SignatureTransfer PermitBatchTransferFrom chain=1 contract=" + Permit2Address + " owner=<nil> spender=" + hexAddr(attackerAddr) + " nonce=0 deadline=1733099400\n" +
				"grant token=" + usdcAddr + " amount=" + maxUint256Dec + " unlimited=true expiration=<nil> nonce=<nil>\n" +
				"grant token=" + usdcAddr + " amount=5 unlimited=false expiration=<nil> nonce=<nil>\n",
			typeHash: "fcf35f5ac6a2c28868dc44c302166470266239195f02b0ee408334829333b766",
		},
		{
			name: "Permit2 PermitWitnessTransferFrom UniswapX order",
			js:   dutchOrderJSON,
			want: "Permit2 SignatureTransfer PermitWitnessTransferFrom chain=1 contract=" + Permit2Address + " owner=<nil> spender=" + reactorAddr + " nonce=1993352592390226690589184237617364412597 deadline=1733099400\n" +
				"grant token=" + usdcAddr + " amount=1000000000 unlimited=false expiration=<nil> nonce=<nil>\n" +
				"witness ExclusiveDutchOrder witness (ExclusiveDutchOrder)\n",
		},
		{
			name: "Permit2 PermitBatchWitnessTransferFrom",
			js:   batchWitnessJSON,
			want: "Permit2 SignatureTransfer PermitBatchWitnessTransferFrom chain=1 contract=" + Permit2Address + " owner=<nil> spender=" + routerAddr + " nonce=5 deadline=1733099400\n" +
				"grant token=" + usdcAddr + " amount=10 unlimited=false expiration=<nil> nonce=<nil>\n" +
				"grant token=" + daiAddr + " amount=20 unlimited=false expiration=<nil> nonce=<nil>\n" +
				"witness MockWitness witness (MockWitness)\n",
		},
		{
			name: "Permit2 witness of an atomic type and another name",
			js:   atomicWitnessJSON,
			want: "Permit2 SignatureTransfer PermitWitnessTransferFrom chain=1 contract=" + Permit2Address + " owner=<nil> spender=" + routerAddr + " nonce=5 deadline=1733099400\n" +
				"grant token=" + usdcAddr + " amount=1 unlimited=false expiration=<nil> nonce=<nil>\n" +
				"witness bytes32 order (bytes32)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writePermitSeed(t, "ok-"+fuzzseed.FileName(tt.name, '-'), tt.js)
			td := mustParse(t, tt.js)
			p, err := td.Permit()
			if err != nil {
				t.Fatalf("Permit: %v", err)
			}
			if got := permitString(p); got != tt.want {
				t.Fatalf("Permit() =\n%s\nwant\n%s", got, tt.want)
			}
			checkPermit(t, td, p)

			// (crosscheck/ethmsg checks that the digest is go-ethereum's,
			// and so are the encodings the recognition rests on, from the
			// seeds this test commits.)
			enc, _ := td.EncodeType(td.PrimaryType())
			th, _ := td.TypeHash(td.PrimaryType())
			if th != keccak256([]byte(enc)) {
				t.Errorf("TypeHash is not keccak256(EncodeType)")
			}
			if tt.typeHash != "" && hexString(th) != tt.typeHash {
				t.Errorf("TypeHash(%s) = %x, want %s", td.PrimaryType(), th, tt.typeHash)
			}
			if tt.domainSeparator != "" && hexString(td.DomainSeparator()) != tt.domainSeparator {
				t.Errorf("DomainSeparator() = %x, want %s", td.DomainSeparator(), tt.domainSeparator)
			}
		})
	}
}

// TestPermitWitnessEncodeType checks the encodeType of the UniswapX order
// against the one UniswapX's reactor hashes: Permit2's stub, the witness
// field, then the referenced structs sorted by name.
func TestPermitWitnessEncodeType(t *testing.T) {
	td := mustParse(t, dutchOrderJSON)
	want := "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,ExclusiveDutchOrder witness)" +
		"DutchOutput(address token,uint256 startAmount,uint256 endAmount,address recipient)" +
		"ExclusiveDutchOrder(OrderInfo info,uint256 decayStartTime,uint256 decayEndTime,address exclusiveFiller,uint256 exclusivityOverrideBps,address inputToken,uint256 inputStartAmount,uint256 inputEndAmount,DutchOutput[] outputs)" +
		"OrderInfo(address reactor,address swapper,uint256 nonce,uint256 deadline,address additionalValidationContract,bytes additionalValidationData)" +
		"TokenPermissions(address token,uint256 amount)"
	if got, _ := td.EncodeType("PermitWitnessTransferFrom"); got != want {
		t.Fatalf("EncodeType =\n%s\nwant\n%s", got, want)
	}
	p, err := td.Permit()
	if err != nil {
		t.Fatal(err)
	}
	w := p.Witness
	if w == nil || w.Value == nil || w.Value.Kind != KindStruct {
		t.Fatalf("Witness = %+v", w)
	}
	// The witness hashes as the fifth word of the message hash does.
	if td.hashStruct(w.Value) != td.hashStruct(td.Message().Fields[4].Value) {
		t.Error("the witness copy hashes differently")
	}
	info, _ := w.Value.Field("info")
	swapper, _ := info.Field("swapper")
	if swapper == nil || swapper.Address != mustAddr(t, ownerAddr) {
		t.Errorf("witness.info.swapper = %+v", swapper)
	}
}

// TestPermitCopies checks that what Permit returns is the caller's to change.
func TestPermitCopies(t *testing.T) {
	for _, js := range []string{usdcPermitJSON, permitBatchJSON, dutchOrderJSON} {
		td := mustParse(t, js)
		h := td.Hash()
		p, err := td.Permit()
		if err != nil {
			t.Fatal(err)
		}
		want := permitString(p)
		scribble(p)
		again, err := td.Permit()
		if err != nil || permitString(again) != want {
			t.Fatalf("after changing a result, Permit() =\n%s%v\nwant\n%s", permitString(again), err, want)
		}
		if again.Witness != nil && td.hashStruct(again.Witness.Value) != td.hashStruct(td.Message().Fields[4].Value) {
			t.Fatal("changing the witness changed the document")
		}
		if td.Hash() != h {
			t.Fatal("changing a result changed the hash")
		}
	}
}

// scribble overwrites everything a permit points to.
func scribble(p *Permit) {
	for _, n := range []*big.Int{p.ChainID, p.Nonce, p.Deadline} {
		if n != nil {
			n.SetInt64(-1)
		}
	}
	if p.Owner != nil {
		p.Owner[0] ^= 0xff
	}
	for _, g := range p.Grants {
		for _, n := range []*big.Int{g.Amount, g.Expiration, g.Nonce} {
			if n != nil {
				n.SetInt64(-1)
			}
		}
	}
	if p.Witness != nil {
		var mess func(v *Value)
		mess = func(v *Value) {
			if v.Int != nil {
				v.Int.SetInt64(-1)
			}
			for i := range v.Bytes {
				v.Bytes[i] ^= 0xff
			}
			v.Address[0] ^= 0xff
			v.Bool = !v.Bool
			for _, f := range v.Fields {
				mess(f.Value)
			}
			for _, e := range v.Elems {
				mess(e)
			}
		}
		mess(p.Witness.Value)
	}
}

// edit replaces old by new in js, n times (-1: all), failing the test if old
// does not occur.
func edit(t *testing.T, js string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(js, pairs[i]) {
			t.Fatalf("edit: %q not in the document", pairs[i])
		}
		js = strings.ReplaceAll(js, pairs[i], pairs[i+1])
	}
	return js
}

// TestPermitRefused lists documents that look like permits without being
// exactly one: each parses, and Permit refuses it.
func TestPermitRefused(t *testing.T) {
	tests := []struct {
		name    string
		js      func(t *testing.T) string
		wantErr string
	}{
		// EIP-2612.
		{"EIP-2612 renamed field", func(t *testing.T) string {
			return edit(t, usdcPermitJSON, `"name":"owner"`, `"name":"holder"`, `"owner":`, `"holder":`)
		}, "primary type Permit is not the permit of that name"},
		{"EIP-2612 reordered fields", func(t *testing.T) string {
			return edit(t, usdcPermitJSON, `{"name":"owner","type":"address"},{"name":"spender","type":"address"}`, `{"name":"spender","type":"address"},{"name":"owner","type":"address"}`)
		}, "primary type Permit is not the permit of that name"},
		{"EIP-2612 value uint128", func(t *testing.T) string {
			return edit(t, usdcPermitJSON, `{"name":"value","type":"uint256"}`, `{"name":"value","type":"uint128"}`)
		}, "primary type Permit is not the permit of that name"},
		{"EIP-2612 extra field", func(t *testing.T) string {
			return edit(t, usdcPermitJSON, `{"name":"deadline","type":"uint256"}]`, `{"name":"deadline","type":"uint256"},{"name":"memo","type":"string"}]`, `"deadline":"1767225600"`, `"deadline":"1767225600","memo":"hi"`)
		}, "primary type Permit is not the permit of that name"},
		{"DAI permit", func(t *testing.T) string {
			return typedDoc("Permit", `{"name":"Dai Stablecoin","version":"1","chainId":1,"verifyingContract":"`+daiAddr+`"}`,
				`{"holder":"`+ownerAddr+`","spender":"`+attackerAddr+`","nonce":0,"expiry":0,"allowed":true}`,
				eip2612DomainType, `"Permit":[{"name":"holder","type":"address"},{"name":"spender","type":"address"},{"name":"nonce","type":"uint256"},{"name":"expiry","type":"uint256"},{"name":"allowed","type":"bool"}]`)
		}, "primary type Permit is not the permit of that name"},
		{"ERC-4494 NFT permit", func(t *testing.T) string {
			return typedDoc("Permit", usdcDomain, `{"spender":"`+attackerAddr+`","tokenId":1,"nonce":0,"deadline":1}`,
				eip2612DomainType, `"Permit":[{"name":"spender","type":"address"},{"name":"tokenId","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]`)
		}, "primary type Permit is not the permit of that name"},
		{"EIP-2612 without verifyingContract", func(t *testing.T) string {
			return edit(t, usdcPermitJSON, `,{"name":"verifyingContract","type":"address"}`, ``, `,"verifyingContract":"`+usdcAddr+`"`, ``)
		}, "EIP-2612 Permit without a domain verifyingContract (the token)"},
		{"EIP-2612 without chainId", func(t *testing.T) string {
			return edit(t, usdcPermitJSON, `{"name":"chainId","type":"uint256"},`, ``, `"chainId":1,`, ``)
		}, "EIP-2612 Permit without a domain chainId"},
		{"EIP-2612 with salt instead of chainId", func(t *testing.T) string {
			return edit(t, usdcPermitJSON, `{"name":"chainId","type":"uint256"},`, ``, `"chainId":1,`, ``,
				`{"name":"verifyingContract","type":"address"}]`, `{"name":"verifyingContract","type":"address"},{"name":"salt","type":"bytes32"}]`,
				`"verifyingContract":"`+usdcAddr+`"`, `"verifyingContract":"`+usdcAddr+`","salt":"0x`+strings.Repeat("00", 31)+`01"`)
		}, "EIP-2612 Permit without a domain chainId"},
		{"EIP-2612 named for Permit2", func(t *testing.T) string {
			return edit(t, usdcPermitJSON, `"name":"USD Coin"`, `"name":"Permit2"`)
		}, `EIP-2612 Permit signed for Permit2 (name "Permit2", verifyingContract ` + usdcAddr + `)`},
		{"EIP-2612 at the Permit2 address", func(t *testing.T) string {
			return edit(t, usdcPermitJSON, `"verifyingContract":"`+usdcAddr+`"`, `"verifyingContract":"`+Permit2Address+`"`)
		}, "EIP-2612 Permit signed for Permit2"},

		// The Permit2 domain with other types.
		{"Permit2 domain with Mail", func(t *testing.T) string {
			return edit(t, testgen.MailJSON, `"name": "Ether Mail"`, `"name": "Permit2"`)
		}, `primary type "Mail" is signed for Permit2 (name "Permit2", verifyingContract 0xCcCC`},
		{"Permit2 address with another name", func(t *testing.T) string {
			return edit(t, testgen.MailJSON, "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC", Permit2Address)
		}, `primary type "Mail" is signed for Permit2 (name "Ether Mail", verifyingContract ` + Permit2Address + `)`},
		{"Permit2 domain with a PermitSingle look-alike under another name", func(t *testing.T) string {
			return edit(t, permitSingleJSON, `"PermitSingle"`, `"Approval"`)
		}, `primary type "Approval" is signed for Permit2`},

		// Permit2 AllowanceTransfer.
		{"PermitDetails amount uint256", func(t *testing.T) string {
			return edit(t, permitSingleJSON, `{"name":"amount","type":"uint160"}`, `{"name":"amount","type":"uint256"}`)
		}, "primary type PermitSingle is not the permit of that name"},
		{"PermitDetails reordered", func(t *testing.T) string {
			return edit(t, permitBatchJSON, `{"name":"expiration","type":"uint48"},{"name":"nonce","type":"uint48"}`, `{"name":"nonce","type":"uint48"},{"name":"expiration","type":"uint48"}`)
		}, "primary type PermitBatch is not the permit of that name"},
		{"PermitDetails extra field", func(t *testing.T) string {
			return edit(t, permitSingleJSON, `{"name":"nonce","type":"uint48"}]`, `{"name":"nonce","type":"uint48"},{"name":"to","type":"address"}]`, `"nonce":"0"}`, `"nonce":"0","to":"`+attackerAddr+`"}`)
		}, "primary type PermitSingle is not the permit of that name"},
		{"PermitSingle renamed spender", func(t *testing.T) string {
			return edit(t, permitSingleJSON, `{"name":"spender"`, `{"name":"operator"`, `"spender":`, `"operator":`)
		}, "primary type PermitSingle is not the permit of that name"},
		{"PermitDetails renamed type", func(t *testing.T) string {
			return edit(t, permitSingleJSON, `PermitDetails`, `PermitDetail`)
		}, "primary type PermitSingle is not the permit of that name"},
		{"PermitSingle under the USDC domain", func(t *testing.T) string {
			return typedDoc("PermitSingle", usdcDomain,
				`{"details":{"token":"`+usdcAddr+`","amount":"1","expiration":"1","nonce":"0"},"spender":"`+routerAddr+`","sigDeadline":"1"}`,
				eip2612DomainType, permitSingleType, permitDetailsType)
		}, `PermitSingle outside the Permit2 domain (name "USD Coin", verifyingContract ` + usdcAddr + `)`},
		{"Permit2 domain with a version", func(t *testing.T) string {
			return edit(t, permitSingleJSON, permit2DomainType, eip2612DomainType, `"name":"Permit2",`, `"name":"Permit2","version":"1",`)
		}, "PermitSingle outside the Permit2 domain"},
		{"Permit2 domain without chainId", func(t *testing.T) string {
			return edit(t, permitSingleJSON, `{"name":"chainId","type":"uint256"},`, ``, `"chainId":1,`, ``)
		}, "PermitSingle outside the Permit2 domain"},
		{"Permit2 domain without verifyingContract", func(t *testing.T) string {
			return edit(t, permitSingleJSON, `,{"name":"verifyingContract","type":"address"}`, ``, `,"verifyingContract":"`+Permit2Address+`"`, ``)
		}, "PermitSingle outside the Permit2 domain"},
		{"Permit2 domain with another name", func(t *testing.T) string {
			return edit(t, permitSingleJSON, `"name":"Permit2"`, `"name":"permit2"`)
		}, `PermitSingle outside the Permit2 domain (name "permit2", verifyingContract ` + Permit2Address + `)`},
		{"Permit2 name at another address", func(t *testing.T) string {
			return edit(t, permitSingleJSON, `"name":"Permit2"`, `"name":"Permit3"`, Permit2Address, otherPermit2)
		}, "PermitSingle outside the Permit2 domain"},
		{"PermitBatch with no details", func(t *testing.T) string {
			return typedDoc("PermitBatch", permit2Domain, `{"details":[],"spender":"`+routerAddr+`","sigDeadline":"1"}`,
				permit2DomainType, permitBatchType, permitDetailsType)
		}, "PermitBatch grants no token (empty array)"},

		// Permit2 SignatureTransfer.
		{"TokenPermissions amount uint160", func(t *testing.T) string {
			return edit(t, permitTransferJSON, `{"name":"amount","type":"uint256"}`, `{"name":"amount","type":"uint160"}`)
		}, "primary type PermitTransferFrom is not the permit of that name"},
		{"PermitBatchTransferFrom with no permitted", func(t *testing.T) string {
			return typedDoc("PermitBatchTransferFrom", permit2Domain, `{"permitted":[],"spender":"`+routerAddr+`","nonce":"1","deadline":"1"}`,
				permit2DomainType, permitBatchXferType, tokenPermissionsType)
		}, "PermitBatchTransferFrom grants no token (empty array)"},
		{"PermitTransferFrom with a witness", func(t *testing.T) string {
			return edit(t, atomicWitnessJSON, `PermitWitnessTransferFrom`, `PermitTransferFrom`)
		}, "primary type PermitTransferFrom is not the permit of that name"},
		{"PermitWitnessTransferFrom without witness", func(t *testing.T) string {
			return edit(t, permitTransferJSON, `PermitTransferFrom`, `PermitWitnessTransferFrom`)
		}, "primary type PermitWitnessTransferFrom is not the permit of that name: definition"},
		{"PermitWitnessTransferFrom with two witnesses", func(t *testing.T) string {
			return edit(t, atomicWitnessJSON, `{"name":"order","type":"bytes32"}`, `{"name":"order","type":"bytes32"},{"name":"to","type":"address"}`, `"order":`, `"to":"`+attackerAddr+`","order":`)
		}, "primary type PermitWitnessTransferFrom is not the permit of that name: definition"},
		{"PermitWitnessTransferFrom renamed deadline", func(t *testing.T) string {
			return edit(t, atomicWitnessJSON, `{"name":"deadline"`, `{"name":"expiry"`, `"deadline":`, `"expiry":`)
		}, "primary type PermitWitnessTransferFrom is not the permit of that name: definition"},
		{"PermitWitnessTransferFrom with TokenPermissions amount uint160", func(t *testing.T) string {
			return edit(t, dutchOrderJSON, `"TokenPermissions":[{"name":"token","type":"address"},{"name":"amount","type":"uint256"}]`, `"TokenPermissions":[{"name":"token","type":"address"},{"name":"amount","type":"uint160"}]`)
		}, `PermitWitnessTransferFrom with TokenPermissions "TokenPermissions(address token,uint160 amount)"`},
		{"PermitBatchWitnessTransferFrom with one TokenPermissions", func(t *testing.T) string {
			return edit(t, batchWitnessJSON, `{"name":"permitted","type":"TokenPermissions[]"}`, `{"name":"permitted","type":"TokenPermissions"}`,
				`"permitted":[{"token":"`+usdcAddr+`","amount":"10"},{"token":"`+daiAddr+`","amount":"20"}]`, `"permitted":{"token":"`+usdcAddr+`","amount":"10"}`)
		}, "primary type PermitBatchWitnessTransferFrom is not the permit of that name"},
		{"PermitBatchWitnessTransferFrom witness first", func(t *testing.T) string {
			return edit(t, batchWitnessJSON, `[{"name":"permitted","type":"TokenPermissions[]"},`, `[{"name":"witness","type":"MockWitness"},{"name":"permitted","type":"TokenPermissions[]"},`,
				`,{"name":"witness","type":"MockWitness"}]`, `]`)
		}, "primary type PermitBatchWitnessTransferFrom is not the permit of that name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js := tt.js(t)
			writePermitSeed(t, "bad-"+fuzzseed.FileName(tt.name, '-'), js)
			td := mustParse(t, js)
			p, err := td.Permit()
			if err == nil {
				t.Fatalf("Permit() = %s, want an error", permitString(p))
			}
			if p != nil {
				t.Fatal("a result with an error")
			}
			if !strings.HasPrefix(err.Error(), "ethmsg: permit: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v\nwant %q", err, tt.wantErr)
			}
			// (crosscheck/ethmsg checks that go-ethereum hashes these
			// documents as we do, from the seeds this test commits: the
			// refusal is Permit's, not a disagreement about the digest.)
		})
	}
}

// TestPermitNotAPermit lists documents that are no permit: Permit reports
// nil and no error, and policy judges them by their domain and type.
func TestPermitNotAPermit(t *testing.T) {
	tests := []struct {
		name string
		js   string
	}{
		{"Mail", testgen.MailJSON},
		{"permit fields under another type name", strings.ReplaceAll(usdcPermitJSON, `"Permit"`, `"Approval"`)},
		// A PermitSingle look-alike outside the Permit2 domain: no Permit2
		// verifies it (its type hash is not Permit2's).
		{"PermitSingle fields under another name and domain", edit(t, permitSingleJSON, `"PermitSingle"`, `"Order"`, `"name":"Permit2"`, `"name":"Exchange"`, Permit2Address, otherPermit2)},
		// EIP-3009 moves USDC with a signature too, but it is a transfer,
		// not an allowance: it is no permit, and the domain allowlist alone
		// must not let it through (see the report of this change).
		{"USDC TransferWithAuthorization", typedDoc("TransferWithAuthorization", usdcDomain,
			`{"from":"`+ownerAddr+`","to":"`+attackerAddr+`","value":"1000000","validAfter":"0","validBefore":"1767225600","nonce":"0x`+strings.Repeat("11", 32)+`"}`,
			eip2612DomainType, `"TransferWithAuthorization":[{"name":"from","type":"address"},{"name":"to","type":"address"},{"name":"value","type":"uint256"},{"name":"validAfter","type":"uint256"},{"name":"validBefore","type":"uint256"},{"name":"nonce","type":"bytes32"}]`)},
		{"Permit2 types not primary", typedDoc("Bundle", `{"name":"Router","chainId":1,"verifyingContract":"`+routerAddr+`"}`,
			`{"permit":{"details":{"token":"`+usdcAddr+`","amount":"1","expiration":"1","nonce":"0"},"spender":"`+routerAddr+`","sigDeadline":"1"}}`,
			permit2DomainType, `"Bundle":[{"name":"permit","type":"PermitSingle"}]`, permitSingleType, permitDetailsType)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writePermitSeed(t, "none-"+fuzzseed.FileName(tt.name, '-'), tt.js)
			td := mustParse(t, tt.js)
			p, err := td.Permit()
			if p != nil || err != nil {
				t.Fatalf("Permit() = %s, %v; want nil, nil", permitString(p), err)
			}
		})
	}
}

// fieldSpec is a field of a struct type of a typed-data document.
type fieldSpec struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// mutDoc is a typed-data document to mutate.
type mutDoc struct {
	Types       map[string][]fieldSpec `json:"types"`
	PrimaryType string                 `json:"primaryType"`
	Domain      map[string]any         `json:"domain"`
	Message     map[string]any         `json:"message"`
}

func decodeMutDoc(t *testing.T, js []byte) *mutDoc {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var d mutDoc
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func (d *mutDoc) encode(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// objects returns the JSON objects of the message that are structs of type
// name.
func (d *mutDoc) objects(name string) []map[string]any {
	var out []map[string]any
	var walk func(typ string, v any)
	walk = func(typ string, v any) {
		if strings.HasSuffix(typ, "]") {
			arr, _ := v.([]any)
			for _, e := range arr {
				walk(typ[:strings.LastIndexByte(typ, '[')], e)
			}
			return
		}
		fields, ok := d.Types[typ]
		obj, _ := v.(map[string]any)
		if !ok || obj == nil {
			return
		}
		if typ == name {
			out = append(out, obj)
		}
		for _, f := range fields {
			walk(f.Type, obj[f.Name])
		}
	}
	walk(d.PrimaryType, d.Message)
	return out
}

// TestPermitMutationsRefused changes the fixed structs of each recognised
// permit one field at a time (renaming, retyping, swapping with the next,
// dropping, or adding a field) and checks that every variant that still
// parses is refused: nothing near a permit is taken for a permit, or for
// no permit.
func TestPermitMutationsRefused(t *testing.T) {
	retype := map[string]string{"uint256": "uint248", "uint160": "uint256", "uint48": "uint56", "address": "bytes20"}
	docs := []string{usdcPermitJSON, permitSingleJSON, permitSingleDrainJSON, permitBatchJSON, permitTransferJSON, permitBatchTransferJSON, dutchOrderJSON, batchWitnessJSON, atomicWitnessJSON}
	tried, parsed := 0, 0
	for _, js := range docs {
		base := decodeMutDoc(t, []byte(js))
		structs := []string{base.PrimaryType}
		for _, s := range []string{"PermitDetails", "TokenPermissions"} {
			if base.Types[s] != nil {
				structs = append(structs, s)
			}
		}
		for _, s := range structs {
			n := len(base.Types[s])
			for i := 0; i <= n; i++ {
				for _, mutation := range []string{"rename", "retype", "swap", "drop", "add"} {
					d := decodeMutDoc(t, []byte(js))
					fields := d.Types[s]
					objs := d.objects(s)
					witness := s == d.PrimaryType && strings.Contains(s, "Witness") && i == 4
					switch {
					case mutation == "add" && i == n:
						d.Types[s] = append(fields, fieldSpec{Name: "extra", Type: "bool"})
						for _, o := range objs {
							o["extra"] = true
						}
					case i == n || mutation == "add":
						continue
					case mutation == "rename" && !witness:
						old := fields[i].Name
						fields[i].Name += "_"
						for _, o := range objs {
							o[old+"_"] = o[old]
							delete(o, old)
						}
					case mutation == "retype" && !witness && retype[fields[i].Type] != "":
						fields[i].Type = retype[fields[i].Type]
					case mutation == "swap" && i+1 < n:
						fields[i], fields[i+1] = fields[i+1], fields[i]
					case mutation == "drop":
						d.Types[s] = append(fields[:i:i], fields[i+1:]...)
						for _, o := range objs {
							delete(o, fields[i].Name)
						}
					default:
						continue
					}
					tried++
					mutated := d.encode(t)
					td, err := ParseTypedData(mutated)
					if err != nil {
						continue // the message no longer fits the types
					}
					parsed++
					p, err := td.Permit()
					if err == nil {
						t.Errorf("%s of %s.%d in %s: Permit() = %s, want an error\n%s", mutation, s, i, base.PrimaryType, permitString(p), mutated)
					}
				}
			}
		}
	}
	t.Logf("%d mutations, %d parsed and were refused", tried, parsed)
	if parsed < 100 {
		t.Errorf("only %d mutated documents parsed", parsed)
	}
}

// checkPermit checks the invariants of a permit Permit returned for td.
func checkPermit(t *testing.T, td *TypedData, p *Permit) {
	t.Helper()
	shape, ok := permitShapes[td.PrimaryType()]
	if !ok || p.Kind != shape.kind || p.PrimaryType != td.PrimaryType() {
		t.Fatalf("kind %v, primary type %s for a document of primary type %s", p.Kind, p.PrimaryType, td.PrimaryType())
	}
	if p.ChainID == nil || p.Deadline == nil || len(p.Grants) == 0 {
		t.Fatalf("incomplete permit %s", permitString(p))
	}
	if shape.batch != (td.Message().Fields[0].Value.Kind == KindArray) || !shape.batch && len(p.Grants) != 1 {
		t.Fatalf("batch %v with %d grants", shape.batch, len(p.Grants))
	}
	d := td.Domain()
	if d.ChainID == nil || d.ChainID.Cmp(p.ChainID) != 0 || d.VerifyingContract == nil || *d.VerifyingContract != p.VerifyingContract {
		t.Fatalf("chain %v contract %s, domain %+v", p.ChainID, p.VerifyingContract.Hex(), d)
	}
	limit := maxUint256
	if p.Kind == Permit2Allowance {
		limit = maxUint160
	}
	maxUint48 := new(big.Int).SetUint64(1<<48 - 1)
	for _, g := range p.Grants {
		if g.Amount == nil || g.Amount.Sign() < 0 || g.Amount.Cmp(limit) > 0 || g.Unlimited != (g.Amount.Cmp(limit) == 0) {
			t.Fatalf("grant amount %v unlimited %v, limit %v", g.Amount, g.Unlimited, limit)
		}
		allowance := p.Kind == Permit2Allowance
		if allowance != (g.Expiration != nil) || allowance != (g.Nonce != nil) {
			t.Fatalf("%v grant with expiration %v nonce %v", p.Kind, g.Expiration, g.Nonce)
		}
		if allowance && (g.Expiration.Cmp(maxUint48) > 0 || g.Nonce.Cmp(maxUint48) > 0) {
			t.Fatalf("uint48 out of range: %v %v", g.Expiration, g.Nonce)
		}
		if p.Kind == PermitEIP2612 && g.Token != p.VerifyingContract {
			t.Fatalf("EIP-2612 token %s, contract %s", g.Token.Hex(), p.VerifyingContract.Hex())
		}
	}
	if (p.Kind == PermitEIP2612) != (p.Owner != nil) || (p.Kind == Permit2Allowance) != (p.Nonce == nil) {
		t.Fatalf("%v with owner %v nonce %v", p.Kind, p.Owner, p.Nonce)
	}
	if (shape.witnessStub != "") != (p.Witness != nil) {
		t.Fatalf("%s with witness %+v", p.PrimaryType, p.Witness)
	}
	enc, _ := td.EncodeType(td.PrimaryType())
	if p.Kind == PermitEIP2612 {
		if enc != eip2612EncodeType {
			t.Fatalf("EIP-2612 permit with encodeType %q", enc)
		}
		return
	}
	if denc, _ := td.EncodeType(domainType); denc != permit2DomainEncodeType || *d.Name != permit2Name {
		t.Fatalf("Permit2 permit in domain %q named %q", denc, *d.Name)
	}
	if shape.witnessStub == "" {
		if enc != shape.encodeType {
			t.Fatalf("%s with encodeType %q", p.PrimaryType, enc)
		}
		return
	}
	if !strings.HasPrefix(enc, shape.witnessStub+p.Witness.Type+" "+p.Witness.Name+")") || !strings.Contains(enc, tokenPermissionsDef) {
		t.Fatalf("%s with encodeType %q, witness %s %s", p.PrimaryType, enc, p.Witness.Type, p.Witness.Name)
	}
	if p.Witness.Value == nil || p.Witness.Value.Type != p.Witness.Type {
		t.Fatalf("witness value %+v", p.Witness.Value)
	}
}

// FuzzPermit feeds arbitrary documents to ParseTypedData and then Permit.
// Properties: Permit never panics; an error starts with "ethmsg: permit: "
// and comes without a result; nil, nil only for a primary type that is no
// permit's outside the Permit2 domain; a permit satisfies checkPermit, is
// the same on every call and is the caller's to change.
func FuzzPermit(f *testing.F) {
	for _, js := range []string{usdcPermitJSON, permitSingleJSON, dutchOrderJSON} {
		f.Add([]byte(js))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := ParseTypedData(data)
		if err != nil {
			return
		}
		p, err := td.Permit()
		if err != nil {
			if p != nil {
				t.Fatal("a result with an error")
			}
			if !strings.HasPrefix(err.Error(), "ethmsg: permit: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if p == nil {
			d := td.Domain()
			_, named := permitShapes[td.PrimaryType()]
			if named || d.Name != nil && *d.Name == permit2Name || d.VerifyingContract != nil && *d.VerifyingContract == permit2Address {
				t.Fatalf("primary type %s, domain %s: not a permit", td.PrimaryType(), describePermitDomain(d))
			}
			return
		}
		checkPermit(t, td, p)
		want := permitString(p)
		scribble(p)
		again, err := td.Permit()
		if err != nil || permitString(again) != want {
			t.Fatalf("second call: %v\n%s\nwant\n%s", err, permitString(again), want)
		}
	})
}
