package keypath

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	deep := "m" + strings.Repeat("/0", MaxDepth)
	tests := []struct {
		name    string
		in      string
		want    Path
		wantStr string // String() of the result, if not in
		wantErr string
	}{
		{name: "master", in: "m", want: Path{}},
		{name: "ethereum", in: "m/44'/60'/0'/0/0", want: Path{Hardened + 44, Hardened + 60, Hardened, 0, 0}},
		{name: "h notation", in: "m/44h/60h/0h/0/7", want: Path{Hardened + 44, Hardened + 60, Hardened, 0, 7}, wantStr: "m/44'/60'/0'/0/7"},
		{name: "largest index", in: "m/2147483647'/2147483647", want: Path{^uint32(0), Hardened - 1}},
		{name: "zero", in: "m/0", want: Path{0}},
		{name: "max depth", in: deep, want: make(Path, MaxDepth)},

		{name: "empty", in: "", wantErr: `keys: path must start with "m"`},
		{name: "no m", in: "44'/60'", wantErr: `keys: path must start with "m"`},
		{name: "capital M", in: "M/0", wantErr: `keys: path must start with "m"`},
		{name: "slash only", in: "/0", wantErr: `keys: path must start with "m"`},
		{name: "m without slash", in: "m0", wantErr: `keys: path must start with "m/"`},
		{name: "trailing slash", in: "m/", wantErr: "keypath: path component 1: empty index"},
		{name: "trailing slash after index", in: "m/0/", wantErr: "keypath: path component 2: empty index"},
		{name: "double slash", in: "m//0", wantErr: "keypath: path component 1: empty index"},
		{name: "hardened mark only", in: "m/'", wantErr: "keypath: path component 1: empty index"},
		{name: "leading zero", in: "m/01", wantErr: "keypath: path component 1: index has a leading zero"},
		{name: "leading zero hardened", in: "m/44'/00'", wantErr: "keypath: path component 2: index has a leading zero"},
		{name: "2^31", in: "m/2147483648", wantErr: "keypath: path component 1: index is 2^31 or more; write hardened indices with '"},
		{name: "2^31 hardened", in: "m/2147483648'", wantErr: "keypath: path component 1: index is 2^31 or more; write hardened indices with '"},
		{name: "huge", in: "m/99999999999999999999999", wantErr: "keypath: path component 1: index is 2^31 or more; write hardened indices with '"},
		{name: "double mark", in: "m/1''", wantErr: "keypath: path component 1: index is not a decimal number"},
		{name: "mixed marks", in: "m/1'h", wantErr: "keypath: path component 1: index is not a decimal number"},
		{name: "capital H", in: "m/1H", wantErr: "keypath: path component 1: index is not a decimal number"},
		{name: "sign", in: "m/+1", wantErr: "keypath: path component 1: index is not a decimal number"},
		{name: "negative", in: "m/-1", wantErr: "keypath: path component 1: index is not a decimal number"},
		{name: "space", in: "m/ 1", wantErr: "keypath: path component 1: index is not a decimal number"},
		{name: "trailing space", in: "m/1 ", wantErr: "keypath: path component 1: index is not a decimal number"},
		{name: "hex", in: "m/0x1", wantErr: "keypath: path component 1: index is not a decimal number"},
		{name: "unicode digit", in: "m/١", wantErr: "keypath: path component 1: index is not a decimal number"},
		{name: "too deep", in: deep + "/0", wantErr: "keypath: path is deeper than 255"},
		{name: "too long", in: "m/" + strings.Repeat("1", maxPathLen), wantErr: "keypath: path is 3063 characters, limit is 3061"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePath(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParsePath(%q) = %v, want error", tt.in, p)
				}
				if err.Error() != tt.wantErr {
					t.Fatalf("ParsePath(%q) error = %q, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePath(%q) error = %v", tt.in, err)
			}
			if !reflect.DeepEqual(p, tt.want) {
				t.Fatalf("ParsePath(%q) = %v, want %v", tt.in, []uint32(p), []uint32(tt.want))
			}
			wantStr := tt.wantStr
			if wantStr == "" {
				wantStr = tt.in
			}
			if got := p.String(); got != wantStr {
				t.Fatalf("String() = %q, want %q", got, wantStr)
			}
			if back, err := ParsePath(p.String()); err != nil || !reflect.DeepEqual(back, p) {
				t.Fatalf("ParsePath(String()) = %v, %v", back, err)
			}
		})
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"m", "m/44'/60'/0'/0/0", "m/0h/1", "m/01", "m//", "m/2147483648"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		// One spelling per path: what is accepted renders back to itself,
		// up to the choice of hardened mark.
		if got, want := p.String(), strings.ReplaceAll(s, "h", "'"); got != want {
			t.Fatalf("ParsePath(%q).String() = %q", s, got)
		}
	})
}
