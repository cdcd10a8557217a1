package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/nitrosign/nitrosign/ethtx"
	"github.com/nitrosign/nitrosign/keypath"
)

type vectorChain struct {
	path string
	xpub string
	xprv string
}

// bip32Vectors are the test vectors of BIP-32, copied from the BIP
// (bitcoin/bips, bip-0032.mediawiki, "Test Vectors").
var bip32Vectors = []struct {
	name   string
	seed   string
	chains []vectorChain
}{
	{
		name: "vector 1",
		seed: "000102030405060708090a0b0c0d0e0f",
		chains: []vectorChain{
			{"m",
				"xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
				"xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"},
			{"m/0H",
				"xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
				"xprv9uHRZZhk6KAJC1avXpDAp4MDc3sQKNxDiPvvkX8Br5ngLNv1TxvUxt4cV1rGL5hj6KCesnDYUhd7oWgT11eZG7XnxHrnYeSvkzY7d2bhkJ7"},
			{"m/0H/1",
				"xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
				"xprv9wTYmMFdV23N2TdNG573QoEsfRrWKQgWeibmLntzniatZvR9BmLnvSxqu53Kw1UmYPxLgboyZQaXwTCg8MSY3H2EU4pWcQDnRnrVA1xe8fs"},
			{"m/0H/1/2H",
				"xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5",
				"xprv9z4pot5VBttmtdRTWfWQmoH1taj2axGVzFqSb8C9xaxKymcFzXBDptWmT7FwuEzG3ryjH4ktypQSAewRiNMjANTtpgP4mLTj34bhnZX7UiM"},
			{"m/0H/1/2H/2",
				"xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
				"xprvA2JDeKCSNNZky6uBCviVfJSKyQ1mDYahRjijr5idH2WwLsEd4Hsb2Tyh8RfQMuPh7f7RtyzTtdrbdqqsunu5Mm3wDvUAKRHSC34sJ7in334"},
			{"m/0H/1/2H/2/1000000000",
				"xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy",
				"xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76"},
		},
	},
	{
		name: "vector 2",
		seed: "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542",
		chains: []vectorChain{
			{"m",
				"xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB",
				"xprv9s21ZrQH143K31xYSDQpPDxsXRTUcvj2iNHm5NUtrGiGG5e2DtALGdso3pGz6ssrdK4PFmM8NSpSBHNqPqm55Qn3LqFtT2emdEXVYsCzC2U"},
			{"m/0",
				"xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH",
				"xprv9vHkqa6EV4sPZHYqZznhT2NPtPCjKuDKGY38FBWLvgaDx45zo9WQRUT3dKYnjwih2yJD9mkrocEZXo1ex8G81dwSM1fwqWpWkeS3v86pgKt"},
			{"m/0/2147483647H",
				"xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a",
				"xprv9wSp6B7kry3Vj9m1zSnLvN3xH8RdsPP1Mh7fAaR7aRLcQMKTR2vidYEeEg2mUCTAwCd6vnxVrcjfy2kRgVsFawNzmjuHc2YmYRmagcEPdU9"},
			{"m/0/2147483647H/1",
				"xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon",
				"xprv9zFnWC6h2cLgpmSA46vutJzBcfJ8yaJGg8cX1e5StJh45BBciYTRXSd25UEPVuesF9yog62tGAQtHjXajPPdbRCHuWS6T8XA2ECKADdw4Ef"},
			{"m/0/2147483647H/1/2147483646H",
				"xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL",
				"xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc"},
			{"m/0/2147483647H/1/2147483646H/2",
				"xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt",
				"xprvA2nrNbFZABcdryreWet9Ea4LvTJcGsqrMzxHx98MMrotbir7yrKCEXw7nadnHM8Dq38EGfSh6dqA9QWTyefMLEcBYJUuekgW4BYPJcr9E7j"},
		},
	},
	{
		// Retention of leading zeros (bitpay/bitcore-lib#47).
		name: "vector 3",
		seed: "4b381541583be4423346c643850da4b320e46a87ae3d2a4e6da11eba819cd4acba45d239319ac14f863b8d5ab5a0d0c64d2e8a1e7d1457df2e5a3c51c73235be",
		chains: []vectorChain{
			{"m",
				"xpub661MyMwAqRbcEZVB4dScxMAdx6d4nFc9nvyvH3v4gJL378CSRZiYmhRoP7mBy6gSPSCYk6SzXPTf3ND1cZAceL7SfJ1Z3GC8vBgp2epUt13",
				"xprv9s21ZrQH143K25QhxbucbDDuQ4naNntJRi4KUfWT7xo4EKsHt2QJDu7KXp1A3u7Bi1j8ph3EGsZ9Xvz9dGuVrtHHs7pXeTzjuxBrCmmhgC6"},
			{"m/0H",
				"xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y",
				"xprv9uPDJpEQgRQfDcW7BkF7eTya6RPxXeJCqCJGHuCJ4GiRVLzkTXBAJMu2qaMWPrS7AANYqdq6vcBcBUdJCVVFceUvJFjaPdGZ2y9WACViL4L"},
		},
	},
	{
		// Retention of leading zeros (btcsuite/btcutil#172).
		name: "vector 4",
		seed: "3ddd5602285899a946114506157c7997e5444528f3003f6134712147db19b678",
		chains: []vectorChain{
			{"m",
				"xpub661MyMwAqRbcGczjuMoRm6dXaLDEhW1u34gKenbeYqAix21mdUKJyuyu5F1rzYGVxyL6tmgBUAEPrEz92mBXjByMRiJdba9wpnN37RLLAXa",
				"xprv9s21ZrQH143K48vGoLGRPxgo2JNkJ3J3fqkirQC2zVdk5Dgd5w14S7fRDyHH4dWNHUgkvsvNDCkvAwcSHNAQwhwgNMgZhLtQC63zxwhQmRv"},
			{"m/0H",
				"xpub69AUMk3qDBi3uW1sXgjCmVjJ2G6WQoYSnNHyzkmdCHEhSZ4tBok37xfFEqHd2AddP56Tqp4o56AePAgCjYdvpW2PU2jbUPFKsav5ut6Ch1m",
				"xprv9vB7xEWwNp9kh1wQRfCCQMnZUEG21LpbR9NPCNN1dwhiZkjjeGRnaALmPXCX7SgjFTiCTT6bXes17boXtjq3xLpcDjzEuGLQBM5ohqkao9G"},
			{"m/0H/1H",
				"xpub6BJA1jSqiukeaesWfxe6sNK9CCGaujFFSJLomWHprUL9DePQ4JDkM5d88n49sMGJxrhpjazuXYWdMf17C9T5XnxkopaeS7jGk1GyyVziaMt",
				"xprv9xJocDuwtYCMNAo3Zw76WENQeAS6WGXQ55RCy7tDJ8oALr4FWkuVoHJeHVAcAqiZLE7Je3vZJHxspZdFHfnBEjHqU5hG1Jaj32dVoS6XLT1"},
		},
	},
}

// bipPath converts the BIP's "H" notation to ours.
func bipPath(t *testing.T, s string) keypath.Path {
	t.Helper()
	p, err := keypath.ParsePath(strings.ReplaceAll(s, "H", "'"))
	if err != nil {
		t.Fatalf("keypath.ParsePath(%q): %v", s, err)
	}
	return p
}

func TestBIP32Vectors(t *testing.T) {
	for _, v := range bip32Vectors {
		t.Run(v.name, func(t *testing.T) {
			seed, err := hex.DecodeString(v.seed)
			if err != nil {
				t.Fatal(err)
			}
			master, err := NewMaster(seed)
			if err != nil {
				t.Fatal(err)
			}
			// Each chain derived from the master by path, and from the
			// previous chain by one Child step (privately, and publicly
			// where the step is not hardened).
			var prev *ExtendedKey
			for _, c := range v.chains {
				path := bipPath(t, c.path)
				k, err := master.Derive(path)
				if err != nil {
					t.Fatalf("%s: Derive: %v", c.path, err)
				}
				if got := k.Serialize(); got != c.xprv {
					t.Errorf("%s: xprv\n got %s\nwant %s", c.path, got, c.xprv)
				}
				if got := k.Neuter().Serialize(); got != c.xpub {
					t.Errorf("%s: xpub\n got %s\nwant %s", c.path, got, c.xpub)
				}
				if int(k.Depth()) != len(path) {
					t.Errorf("%s: Depth() = %d", c.path, k.Depth())
				}
				if prev != nil {
					last := path[len(path)-1]
					step, err := prev.Child(last)
					if err != nil || step.Serialize() != c.xprv {
						t.Errorf("%s: Child step from parent = %v, %v", c.path, step, err)
					}
					if last < Hardened {
						pub, err := prev.Neuter().Child(last)
						if err != nil || pub.Serialize() != c.xpub {
							t.Errorf("%s: public Child step from parent = %v, %v", c.path, pub, err)
						}
					}
				}
				prev = k
			}
		})
	}
}

// TestEthereumDerivation checks the address every wallet derives at
// m/44'/60'/0'/0/0 from the BIP-39 mnemonic "abandon ... about" (its seed,
// without passphrase, is below).
func TestEthereumDerivation(t *testing.T) {
	seed, _ := hex.DecodeString("5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc1" +
		"9a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4")
	master, err := NewMaster(seed)
	if err != nil {
		t.Fatal(err)
	}
	path, err := keypath.ParsePath("m/44'/60'/0'/0/0")
	if err != nil {
		t.Fatal(err)
	}
	k, err := master.Derive(path)
	if err != nil {
		t.Fatal(err)
	}
	priv := k.PrivateKey()
	defer priv.Zero()
	if got, want := ethtx.PubkeyToAddress(priv.PubKey()).Hex(), "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"; got != want {
		t.Fatalf("address at %s = %s, want %s", path, got, want)
	}
	if !k.PublicKey().IsEqual(priv.PubKey()) {
		t.Fatal("PublicKey() does not match PrivateKey().PubKey()")
	}
}

func TestNewMasterSeedLength(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		wantErr bool
	}{
		{name: "empty", n: 0, wantErr: true},
		{name: "15 bytes", n: 15, wantErr: true},
		{name: "16 bytes", n: 16},
		{name: "64 bytes", n: 64},
		{name: "65 bytes", n: 65, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMaster(bytes.Repeat([]byte{0xab}, tt.n))
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewMaster(%d bytes) error = %v, want error %v", tt.n, err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "abab") {
				t.Fatalf("error reveals the seed: %v", err)
			}
		})
	}
}

// TestInvalidChild reaches the branches that BIP-32 says occur with
// probability below 2^-127, by feeding crafted HMAC outputs.
func TestInvalidChild(t *testing.T) {
	master, err := NewMaster(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	n := secp256k1.S256().N
	be := func(x *big.Int) [32]byte { return [32]byte(x.FillBytes(make([]byte, 32))) }
	parentKey := master.key.Bytes()
	negParent := be(new(big.Int).Sub(n, new(big.Int).SetBytes(parentKey[:])))

	tests := []struct {
		name   string
		key    *ExtendedKey
		il     [32]byte
		index  uint32
		wantIx string
	}{
		{name: "IL = n, private", key: master, il: be(n), index: Hardened + 7, wantIx: "7'"},
		{name: "IL = 2^256-1, private", key: master, il: be(new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))), index: 3, wantIx: "3"},
		{name: "key = 0, private", key: master, il: negParent, index: 9, wantIx: "9"},
		{name: "IL = n, public", key: master.Neuter(), il: be(n), index: 4, wantIx: "4"},
		{name: "point at infinity, public", key: master.Neuter(), il: negParent, index: 5, wantIx: "5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sum [64]byte
			copy(sum[:32], tt.il[:])
			child, err := tt.key.childFromHMAC(tt.index, &sum)
			if !errors.Is(err, ErrInvalidChild) {
				t.Fatalf("childFromHMAC = %v, %v; want ErrInvalidChild", child, err)
			}
			want := "keys: invalid child key at index " + tt.wantIx + " (BIP-32: proceed with the next index)"
			if err.Error() != want {
				t.Fatalf("error = %q, want %q", err, want)
			}
		})
	}

	// The same machinery accepts a valid I_L, so the cases above fail for
	// the reason they name.
	var sum [64]byte
	sum[31] = 1
	if _, err := master.childFromHMAC(1, &sum); err != nil {
		t.Fatalf("childFromHMAC with I_L = 1: %v", err)
	}
	if _, err := master.Neuter().childFromHMAC(1, &sum); err != nil {
		t.Fatalf("public childFromHMAC with I_L = 1: %v", err)
	}
}

func TestChildErrors(t *testing.T) {
	master, err := NewMaster(bytes.Repeat([]byte{2}, 16))
	if err != nil {
		t.Fatal(err)
	}
	deep := master
	for range MaxDepth {
		if deep, err = deep.Child(0); err != nil {
			t.Fatal(err)
		}
	}
	zeroed, _ := NewMaster(bytes.Repeat([]byte{2}, 16))
	zeroed.Zero()

	tests := []struct {
		name    string
		f       func() (*ExtendedKey, error)
		wantErr string
	}{
		{name: "hardened from public", f: func() (*ExtendedKey, error) { return master.Neuter().Child(Hardened + 44) },
			wantErr: "keys: child 44': hardened derivation needs a private key"},
		{name: "past max depth", f: func() (*ExtendedKey, error) { return deep.Child(0) },
			wantErr: "keys: child 0: depth would exceed 255"},
		{name: "derive past max depth", f: func() (*ExtendedKey, error) { return deep.Derive(keypath.Path{0}) },
			wantErr: "keys: derivation to depth 256 exceeds 255"},
		{name: "derive hardened from public", f: func() (*ExtendedKey, error) { return master.Neuter().Derive(keypath.Path{0, 1, Hardened}) },
			wantErr: "keys: child 0': hardened derivation needs a private key"},
		{name: "child of zeroed", f: func() (*ExtendedKey, error) { return zeroed.Child(0) },
			wantErr: "keys: derivation from a zeroed key"},
		{name: "derive from zeroed", f: func() (*ExtendedKey, error) { return zeroed.Derive(keypath.Path{}) },
			wantErr: "keys: derivation from a zeroed key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := tt.f()
			if err == nil {
				t.Fatalf("got key %s, want error", k.Neuter())
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("error = %q, want %q", err, tt.wantErr)
			}
		})
	}
	if deep.Depth() != MaxDepth {
		t.Fatalf("Depth() = %d, want %d", deep.Depth(), MaxDepth)
	}
}

func TestZero(t *testing.T) {
	seed, _ := hex.DecodeString(bip32Vectors[0].seed)
	master, err := NewMaster(seed)
	if err != nil {
		t.Fatal(err)
	}
	k, err := master.Derive(keypath.Path{Hardened, 1})
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Neuter()
	k.Zero()
	if !k.key.IsZero() || k.chainCode != [32]byte{} {
		t.Fatal("Zero left private material")
	}
	if k.PrivateKey() != nil || k.IsPrivate() || k.Serialize() != "" {
		t.Fatal("zeroed key still serves private material")
	}
	// Zeroing a key does not affect its master or its neutered copy.
	if master.Serialize() != bip32Vectors[0].chains[0].xprv {
		t.Fatal("zeroing a child changed the master")
	}
	if pub.Serialize() != bip32Vectors[0].chains[2].xpub {
		t.Fatal("zeroing a key changed its neutered copy")
	}
	// Derive with an empty path returns an independent copy.
	cp, err := master.Derive(keypath.Path{})
	if err != nil {
		t.Fatal(err)
	}
	cp.Zero()
	if master.Serialize() != bip32Vectors[0].chains[0].xprv {
		t.Fatal("zeroing Derive(empty path) changed the master")
	}
}

func TestNeuter(t *testing.T) {
	master, err := NewMaster(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	pub := master.Neuter()
	if pub.IsPrivate() || pub.PrivateKey() != nil {
		t.Fatal("neutered key holds a private key")
	}
	if !strings.HasPrefix(pub.Serialize(), "xpub") || !strings.HasPrefix(master.Serialize(), "xprv") {
		t.Fatalf("serializations %s / %s", pub, master)
	}
	if pub.Neuter().Serialize() != pub.Serialize() {
		t.Fatal("Neuter of a public key changed it")
	}
	if pub.Fingerprint() != master.Fingerprint() {
		t.Fatal("fingerprints differ")
	}
	// Public derivation agrees with private derivation on normal paths.
	path := keypath.Path{1, 2, 3, 1 << 30}
	a, err := master.Derive(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := pub.Derive(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Neuter().Serialize() != b.Serialize() {
		t.Fatal("public and private derivation disagree")
	}
}

func TestBase58(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: ""},
		{name: "zero byte", in: "00", want: "1"},
		{name: "zeros", in: "000000", want: "111"},
		{name: "57", in: "39", want: "z"},
		{name: "58", in: "3a", want: "21"},
		{name: "hello world", in: hex.EncodeToString([]byte("hello world")), want: "StV1DL6CwTryKyV"},
		{name: "leading zeros", in: strings.Repeat("00", 20), want: strings.Repeat("1", 20)},
		{name: "leading zero then data", in: "000111d38e5fc9071ffcd20b4a763cc9ae4f252bb4e48fd66a835e252ada93ff480d6dd43dc62a641155a5", want: "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := hex.DecodeString(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := base58Encode(in); got != tt.want {
				t.Fatalf("base58Encode(%s) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestStringRedactsPrivateKeys(t *testing.T) {
	seed, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	master, err := NewMaster(seed)
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(master); strings.Contains(s, "xprv") || s != "keys.ExtendedKey(private, redacted)" {
		t.Errorf("fmt of a private key = %q, want it redacted", s)
	}
	if s := master.Neuter().String(); !strings.HasPrefix(s, "xpub") {
		t.Errorf("String of a public key = %q, want its xpub", s)
	}
}
