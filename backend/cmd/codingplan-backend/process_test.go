package main

import (
	"os"
	"testing"
)

// envRunMain makes the test binary run main instead of the tests, so that a test can start
// codingplan-backend as a process of its own, with a real environment, stdout and stderr.
const envRunMain = "CODINGPLAN_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
