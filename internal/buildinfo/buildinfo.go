// Package buildinfo says which build a binary is, for the --version flag
// of nitrosign, nitrosign-host and nitrosign-enclave: the software
// version, the source revision and the Go toolchain, and the build flags
// as the Go linker recorded them in the binary (debug.ReadBuildInfo).
//
// Nothing here reads the clock or the environment at build time: the
// enclave's build must stay reproducible (two builds of one tree are
// byte-identical, and PCR0 is their measurement), so the version is a
// constant, and the revision is what the toolchain records, or
// "unknown". The enclave is built with -buildvcs=false for that reason,
// and reports "unknown".
package buildinfo

import (
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultVersion is the software version of a build that does not set one
// at link time. It is the version the enclave attests (enclave.Version,
// which cmd/nitrosign-enclave's tests keep equal to it).
const DefaultVersion = "0.1.0-dev"

// version is the version set at link time, for packagers:
//
//	go build -ldflags "-X github.com/nitrosign/nitrosign/internal/buildinfo.version=1.2.3" ./cmd/nitrosign
//
// Empty: DefaultVersion.
var version string

// Unknown is the commit of a build whose revision was not recorded
// (-buildvcs=false, a build outside a repository, or go install).
const Unknown = "unknown"

// Info identifies a build.
type Info struct {
	// Version is the software version: set at link time, else
	// DefaultVersion.
	Version string
	// Commit is the VCS revision the build info records (vcs.revision),
	// with "-dirty" appended when the tree had changes (vcs.modified), or
	// Unknown.
	Commit string
	// Module is the main module's version when the toolchain knows one
	// (go install …@v1.2.3, or a pseudo-version from the repository); empty
	// for "(devel)".
	Module string
	// GoVersion is the toolchain that built the binary.
	GoVersion string
	// Settings are the build settings the toolchain records, in its order,
	// except vcs and vcs.* (Commit carries what matters of them):
	// -buildmode, -compiler, -trimpath, CGO_ENABLED, GOARCH, GOOS, GOAMD64
	// and the like (-ldflags only in a build without -trimpath).
	Settings []debug.BuildSetting
}

// Read returns this binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(version, bi, ok)
}

// fromBuildInfo makes an Info from a link-time version and the build info.
func fromBuildInfo(linked string, bi *debug.BuildInfo, ok bool) Info {
	info := Info{Version: linked, Commit: Unknown, GoVersion: "unknown"}
	if info.Version == "" {
		info.Version = DefaultVersion
	}
	if !ok || bi == nil {
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		info.Module = v
	}
	var rev string
	var modified bool
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value
		case s.Key == "vcs.modified":
			modified = s.Value == "true"
		case s.Key == "vcs" || strings.HasPrefix(s.Key, "vcs."):
		default:
			info.Settings = append(info.Settings, s)
		}
	}
	if rev != "" {
		info.Commit = rev
		if modified {
			info.Commit += "-dirty"
		}
	}
	return info
}

// Write prints the build as `NAME --version` shows it: the name and
// version, then one line each for the commit, the module version (when
// known) and the Go version, and with flags the build settings, one a
// line, values with spaces or quotes quoted as in `go version -m`.
func (i Info) Write(w io.Writer, name string, flags bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", name, i.Version)
	fmt.Fprintf(&b, "commit  %s\n", i.Commit)
	if i.Module != "" {
		fmt.Fprintf(&b, "module  %s\n", i.Module)
	}
	fmt.Fprintf(&b, "go      %s\n", i.GoVersion)
	if flags {
		for _, s := range i.Settings {
			v := s.Value
			if strings.ContainsAny(v, " \t\r\n\"`") {
				v = strconv.Quote(v)
			}
			fmt.Fprintf(&b, "build   %s=%s\n", s.Key, v)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
