package runner

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: no
// worker, dispatcher, reporter or lease renewal outlives Run or Serve.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
