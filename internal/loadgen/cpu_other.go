//go:build !unix

package loadgen

import "time"

// processCPU is not measured on this platform: results report no client
// CPU time.
func processCPU() (time.Duration, bool) { return 0, false }
