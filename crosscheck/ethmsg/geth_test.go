package ethmsg

// Cross-checks against go-ethereum's EIP-712 implementation
// (signer/core/apitypes), the reference this package must agree with
// wherever it accepts a document.

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"
	"github.com/nitrosign/nitrosign/ethmsg"
	"github.com/nitrosign/nitrosign/internal/testgen"
)

func TestGethMailExample(t *testing.T) {
	td := mustParse(t, testgen.MailJSON)
	gh, err := gethHash([]byte(testgen.MailJSON))
	if err != nil {
		t.Fatal(err)
	}
	if td.Hash() != gh || hexString(gh) != testgen.MailHash {
		t.Errorf("Hash() = %x, go-ethereum %x, spec %s", td.Hash(), gh, testgen.MailHash)
	}
	ds, mh, enc := gethParts(t, []byte(testgen.MailJSON))
	if td.DomainSeparator() != ds || td.MessageHash() != mh {
		t.Errorf("DomainSeparator %x MessageHash %x; go-ethereum %x %x", td.DomainSeparator(), td.MessageHash(), ds, mh)
	}
	if got, _ := td.EncodeType("Mail"); got != enc {
		t.Errorf("EncodeType = %q, go-ethereum %q", got, enc)
	}
}

// repairChecksums rewrites the mixed-case addresses of go-ethereum's test
// files whose EIP-55 checksum is wrong into their correct checksummed form:
// the same addresses, so go-ethereum's hash does not change.
var repairChecksums = strings.NewReplacer(
	"0xCCCcccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC", "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
	"0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826", "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
)

// TestGethTestdataFiles runs go-ethereum's signer/core/testdata files
// (expfail_* are refused there) and its fuzzing corpus. Where go-ethereum
// accepts a file and we refuse it, the case says why, and a repaired
// variant (removing only what we refuse on purpose) must then hash as
// go-ethereum hashes it. Where both refuse, a repaired variant must still be
// refused for the reason the file was written for.
func TestGethTestdataFiles(t *testing.T) {
	dir := gethModuleDir(t)
	type repair struct {
		replacer    *strings.Replacer
		wantErr     string // "" when the repaired file must hash as go-ethereum does
		sameAsInput bool   // the repair leaves go-ethereum's hash unchanged
	}
	tests := map[string]struct {
		gethOK  bool
		wantErr string // our refusal of the file as it is; "" = accept with go-ethereum's hash
		repair  *repair
	}{
		"arrays-1.json": {gethOK: true, wantErr: "types.Foo[2].type: uint is not an EIP-712 type",
			// Deliberate: the alias uint is not EIP-712 (go-ethereum hashes it as
			// "uint[]", others as "uint256[]"); 4.0 is a fraction.
			repair: &repair{replacer: strings.NewReplacer(`"uint[]"`, `"uint256[]"`, "4.0", "4")}},
		"custom_arraytype.json": {gethOK: true},
		"eip712.json": {gethOK: true, wantErr: "domain.verifyingContract: address: invalid EIP-55 checksum",
			// Deliberate: bad checksums; 5.0 is a fraction.
			repair: &repair{replacer: strings.NewReplacer(
				"0xCCCcccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC", "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
				"0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826", "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
				"5.0", "5"), sameAsInput: true}},
		"expfail_arraytype_overload.json":  {wantErr: `types["Person[]"]: invalid type name`},
		"expfail_datamismatch_1.json":      {wantErr: "message.contents: Person: want an object, got a string"},
		"expfail_extradata.json":           {wantErr: "invalid EIP-55 checksum", repair: &repair{replacer: repairChecksums, wantErr: `message: unknown field "blahonga"`}},
		"expfail_malformeddomainkeys.json": {wantErr: `domain: unknown field "vFAILFAILerifyingContract"`},
		"expfail_nonexistant_type.json":    {wantErr: `types.Mail[2].type: undefined struct type "Blahonga"`},
		"expfail_nonexistant_type2.json":   {wantErr: `types.EIP712Domain[2].type: invalid type name "uint256 ... and now`},
		"expfail_toolargeuint.json":        {wantErr: "invalid EIP-55 checksum", repair: &repair{replacer: repairChecksums, wantErr: "message.test: uint8: value 257 out of range"}},
		"expfail_toolargeuint2.json":       {wantErr: "invalid EIP-55 checksum", repair: &repair{replacer: repairChecksums, wantErr: "message.test: uint8: value 257 out of range"}},
		"expfail_unconvertiblefloat.json":  {wantErr: "invalid EIP-55 checksum", repair: &repair{replacer: repairChecksums, wantErr: `message.test: uint8: integer string "255.3"`}},
		"expfail_unconvertiblefloat2.json": {wantErr: "invalid EIP-55 checksum", repair: &repair{replacer: repairChecksums, wantErr: `message.test: uint8: number "255.3" is not an integer`}},

		"fuzzing/2850f6ccf2d7f5f846dfb73119b60e09e712783f": {wantErr: "invalid EIP-55 checksum", repair: &repair{replacer: repairChecksums, wantErr: `integer string "255.3"`}},
		// Deliberate, as arrays-1.json, of which it is a copy.
		"fuzzing/36fb987a774011dc675e1b5246ac5c1d44d84d92": {gethOK: true, wantErr: "uint is not an EIP-712 type",
			repair: &repair{replacer: strings.NewReplacer(`"uint[]"`, `"uint256[]"`, "4.0", "4")}},
		"fuzzing/37ec7b55c7ba014cced204c5f9989d2d0eb9ff6d": {wantErr: "invalid EIP-55 checksum", repair: &repair{replacer: repairChecksums, wantErr: "value 257 out of range"}},
		"fuzzing/582fa92154b784daa1faa293b695fa388fe34bf1": {wantErr: "types: missing"},
		"fuzzing/ab57cb2b2b5ce614efe13a47bc73814580f2cce8": {wantErr: `strictjson: unknown field "ae"`},
		"fuzzing/e4303e23ca34fbbc43164a232b2caa7a3af2bf8d": {wantErr: "types.EIP712Domain[2].type: int is not an EIP-712 type"},
		"fuzzing/f658340af009dd4a35abe645a00a7b732bc30921": {wantErr: `types["0"]: invalid type name "0"`},
	}

	seen := 0
	for _, sub := range []string{"", "fuzzing"} {
		entries, err := os.ReadDir(filepath.Join(dir, "signer", "core", "testdata", sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || sub == "" && !strings.HasSuffix(name, ".json") {
				continue
			}
			if sub != "" {
				name = sub + "/" + name
			}
			seen++
			t.Run(name, func(t *testing.T) {
				tt, ok := tests[name]
				if !ok {
					t.Fatalf("new go-ethereum test file %s: add it to the table", name)
				}
				data, err := os.ReadFile(filepath.Join(dir, "signer", "core", "testdata", filepath.FromSlash(name)))
				if err != nil {
					t.Fatal(err)
				}
				gh, gerr := gethHash(data)
				if (gerr == nil) != tt.gethOK {
					t.Fatalf("go-ethereum: err = %v, want ok = %v (did go-ethereum change?)", gerr, tt.gethOK)
				}
				td, err := ethmsg.ParseTypedData(data)
				switch {
				case tt.wantErr == "" && err != nil:
					t.Fatalf("ParseTypedData: %v", err)
				case tt.wantErr == "" && td.Hash() != gh:
					t.Fatalf("Hash() = %x, go-ethereum %x", td.Hash(), gh)
				case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
					t.Fatalf("ParseTypedData: err = %v, want %q", err, tt.wantErr)
				}
				if tt.repair == nil {
					return
				}
				fixed := []byte(tt.repair.replacer.Replace(string(data)))
				if bytes.Equal(fixed, data) {
					t.Fatal("the repair changed nothing")
				}
				td, err = ethmsg.ParseTypedData(fixed)
				if tt.repair.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.repair.wantErr) {
						t.Fatalf("repaired: err = %v, want %q", err, tt.repair.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("repaired: %v", err)
				}
				want, err := gethHash(fixed)
				if err != nil {
					t.Fatalf("repaired: %v", err)
				}
				if tt.repair.sameAsInput && want != gh {
					t.Fatalf("the repair changed go-ethereum's hash")
				}
				if td.Hash() != want {
					t.Fatalf("repaired: Hash() = %x, go-ethereum %x", td.Hash(), want)
				}
			})
		}
	}
	if seen != len(tests) {
		t.Errorf("go-ethereum has %d test files, the table %d", seen, len(tests))
	}
}

// TestGethTypedDataVectors runs go-ethereum's apitypes/testdata/typed-data.json,
// generated typed data with their digests, every one of which we must accept
// with the same digest.
func TestGethTypedDataVectors(t *testing.T) {
	dir := gethModuleDir(t)
	data, err := os.ReadFile(filepath.Join(dir, "signer", "core", "apitypes", "testdata", "typed-data.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name        string          `json:"name"`
		Domain      json.RawMessage `json:"domain"`
		PrimaryType string          `json:"primaryType"`
		Types       json.RawMessage `json:"types"`
		Data        json.RawMessage `json:"data"`
		Digest      string          `json:"digest"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 100 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		doc, err := json.Marshal(map[string]any{"types": c.Types, "primaryType": c.PrimaryType, "domain": c.Domain, "message": c.Data})
		if err != nil {
			t.Fatal(err)
		}
		td, err := ethmsg.ParseTypedData(doc)
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if got := "0x" + hexString(td.Hash()); got != c.Digest {
			t.Errorf("%s: Hash() = %s, want %s", c.Name, got, c.Digest)
		}
	}
}

// TestGethEmbeddedVectors runs the typed-data documents that go-ethereum's
// signer/core/signed_data_test.go holds as string constants, read from its
// source.
func TestGethEmbeddedVectors(t *testing.T) {
	dir := gethModuleDir(t)
	file := filepath.Join(dir, "signer", "core", "signed_data_test.go")
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := make(map[string]string)
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						consts[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			}
		}
		return true
	})
	// reorderDomain puts the EIP712Domain fields of the da.systems documents
	// in EIP-712 order, which changes the hash (for go-ethereum too).
	reorderDomain := func(s string) string {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			t.Fatal(err)
		}
		var types map[string]json.RawMessage
		if err := json.Unmarshal(doc["types"], &types); err != nil {
			t.Fatal(err)
		}
		types["EIP712Domain"] = json.RawMessage(`[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"},{"name":"verifyingContract","type":"address"}]`)
		doc["types"], _ = json.Marshal(types)
		out, _ := json.Marshal(doc)
		return string(out)
	}
	tests := []struct {
		name     string
		wantHash string // the digest go-ethereum's test expects, when it has one
		wantErr  string
		repair   func(string) string // a variant we must accept with go-ethereum's hash
	}{
		// Bad checksum, and Person.test missing from "to" (go-ethereum refuses that).
		{name: "jsonTypedData", wantErr: "invalid EIP-55 checksum"},
		{name: "gnosisTypedData", wantHash: "28bae2bd58d894a1d9b69e5e9fde3570c4b98a6fc5499aefb54fb830137e831f"},
		{name: "gnosisTypedDataWithChainId", wantHash: "6619dab5401503f2735256e12b898e69eb701d6a7e0d07abf1be4bb8aebfba29"},
		// Deliberate: EIP712Domain lists chainId, name, verifyingContract,
		// version, not in EIP-712 order.
		{name: "complexTypedData", wantHash: "42b1aca82bb6900ff75e90a136de550a58f1a220a071704088eabd5e6ce20446",
			wantErr: `types.EIP712Domain[1].name: "name" out of order`, repair: reorderDomain},
		{name: "complexTypedDataLCRefType", wantHash: "49191f910874f0148597204d9076af128d4694a7c4b714f1ccff330b87207bff",
			wantErr: `types.EIP712Domain[1].name: "name" out of order`, repair: reorderDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			js, ok := consts[tt.name]
			if !ok {
				t.Fatalf("%s has no constant %s", file, tt.name)
			}
			gh, gerr := gethHash([]byte(js))
			if tt.wantHash != "" && (gerr != nil || hexString(gh) != tt.wantHash) {
				t.Fatalf("go-ethereum: %x, %v; its test wants %s", gh, gerr, tt.wantHash)
			}
			td, err := ethmsg.ParseTypedData([]byte(js))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if td.Hash() != gh {
				t.Fatalf("Hash() = %x, go-ethereum %x", td.Hash(), gh)
			}
			if tt.repair != nil {
				fixed := tt.repair(js)
				td := mustParse(t, fixed)
				gh, err := gethHash([]byte(fixed))
				if err != nil {
					t.Fatal(err)
				}
				if td.Hash() != gh {
					t.Fatalf("repaired: Hash() = %x, go-ethereum %x", td.Hash(), gh)
				}
			}
		})
	}
}

// TestGethEncodeType compares encodeType with go-ethereum's for type graphs
// where sorting and name prefixes matter.
func TestGethEncodeType(t *testing.T) {
	docs := []string{
		testgen.MailJSON,
		// Mail and Mail2, and a lower-case name that sorts after upper case.
		doc(`"Mail":[{"name":"a","type":"Mail2"},{"name":"b","type":"mail"},{"name":"c","type":"Mailbox[]"}],`+
			`"Mail2":[{"name":"x","type":"uint8"}],"mail":[{"name":"y","type":"Mail2[2]"}],"Mailbox":[{"name":"z","type":"bool"}]`,
			"Mail", `{"a":{"x":1},"b":{"y":[{"x":2},{"x":3}]},"c":[]}`),
		// A self-reference through a dynamic array is not listed again.
		doc(`"Node":[{"name":"v","type":"uint8"},{"name":"kids","type":"Node[]"},{"name":"leaf","type":"Leaf"}],"Leaf":[{"name":"w","type":"bytes1"}]`,
			"Node", `{"v":1,"kids":[{"v":2,"kids":[],"leaf":{"w":"0x02"}}],"leaf":{"w":"0x01"}}`),
	}
	for i, js := range docs {
		td := mustParse(t, js)
		var gtd apitypes.TypedData
		if err := json.Unmarshal([]byte(js), &gtd); err != nil {
			t.Fatal(err)
		}
		for name := range gtd.Types {
			got, ok := td.EncodeType(name)
			if want := string(gtd.EncodeType(name)); !ok || got != want {
				t.Errorf("doc %d: EncodeType(%s) = %q, go-ethereum %q", i, name, got, want)
			}
			th, _ := td.TypeHash(name)
			if want := gtd.TypeHash(name); !bytes.Equal(th[:], want) {
				t.Errorf("doc %d: TypeHash(%s) = %x, go-ethereum %x", i, name, th, want)
			}
		}
		gh, err := gethHash([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		if td.Hash() != gh {
			t.Errorf("doc %d: Hash() = %x, go-ethereum %x", i, td.Hash(), gh)
		}
	}
}
