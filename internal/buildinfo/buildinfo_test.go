package buildinfo

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/nitrosign/nitrosign", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "-ldflags", Value: "-s -w -buildid="},
			{Key: "-trimpath", Value: "true"},
			{Key: "CGO_ENABLED", Value: "0"},
			{Key: "GOARCH", Value: "amd64"},
			{Key: "GOOS", Value: "linux"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-01-01T00:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	i := fromBuildInfo("", bi, true)
	if i.Version != DefaultVersion || i.Commit != "0123456789abcdef0123456789abcdef01234567-dirty" || i.Module != "" || i.GoVersion != "go1.26.8" || len(i.Settings) != 5 {
		t.Fatalf("info %+v", i)
	}
	var b bytes.Buffer
	if err := i.Write(&b, "nitrosign-enclave", true); err != nil {
		t.Fatal(err)
	}
	want := `nitrosign-enclave 0.1.0-dev
commit  0123456789abcdef0123456789abcdef01234567-dirty
go      go1.26.8
build   -ldflags="-s -w -buildid="
build   -trimpath=true
build   CGO_ENABLED=0
build   GOARCH=amd64
build   GOOS=linux
`
	if b.String() != want {
		t.Fatalf("printed\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	i.Write(&b, "nitrosign", false)
	if strings.Contains(b.String(), "build") {
		t.Fatalf("flags printed without asking:\n%s", b.String())
	}

	// A linked version wins; a module version is shown; a clean tree has
	// no suffix.
	bi.Main.Version = "v1.2.3"
	bi.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}
	if i := fromBuildInfo("1.2.3", bi, true); i.Version != "1.2.3" || i.Commit != "abc" || i.Module != "v1.2.3" || len(i.Settings) != 0 {
		t.Fatalf("info %+v", i)
	}
	// No build info, no revision: unknown, never empty.
	if i := fromBuildInfo("", nil, false); i.Version != DefaultVersion || i.Commit != Unknown || i.GoVersion != "unknown" {
		t.Fatalf("info %+v", i)
	}
	bi.Settings = nil
	if i := fromBuildInfo("", bi, true); i.Commit != Unknown {
		t.Fatalf("commit %q without vcs.revision", i.Commit)
	}
}

func TestRead(t *testing.T) {
	i := Read()
	if i.Version == "" || i.Commit == "" || i.GoVersion != runtime.Version() {
		t.Fatalf("Read() = %+v", i)
	}
}
