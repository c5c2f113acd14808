package wire

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter bounds the wait a Retry-After header can impose, against a broken server.
const MaxRetryAfter = time.Hour

// RetryAfter reads a Retry-After header's value, in seconds or as an HTTP date (relative to
// now), as a wait of at most MaxRetryAfter; 0 when it is empty or malformed. The backend sends
// it with 429 and 503 at the upgrade (docs/protocol.md), the account service with 429.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return min(time.Duration(max(n, 0))*time.Second, MaxRetryAfter)
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(at.Sub(now), 0), MaxRetryAfter)
	}
	return 0
}
