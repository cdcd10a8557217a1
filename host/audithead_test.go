package host

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLastLineOf(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, content, want string }{
		{"missing", "", ""},
		{"one", "{\"seq\":1}\n", "{\"seq\":1}"},
		{"two", "{\"seq\":1}\n{\"seq\":2}\n", "{\"seq\":2}"},
		{"torn", "{\"seq\":1}\n{\"seq\":2}\n{\"se", "{\"seq\":2}"},
		{"only torn", "{\"se", ""},
	} {
		path := filepath.Join(dir, tc.name)
		if tc.name != "missing" {
			os.WriteFile(path, []byte(tc.content), 0o600)
		}
		got, err := lastLineOf(path)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
