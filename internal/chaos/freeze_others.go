//go:build !unix

package chaos

import "os"

// No signals freeze a process here: KillOptions.Freeze is refused.
var sigStop, sigCont os.Signal
