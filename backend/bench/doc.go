// Package bench measures the backend binary end to end, as a client sees it: time to first
// token and backend CPU per streamed chunk through codingplan-backend (a real process on real
// Valkey leases) beside the same test provider read directly, in the same run. It holds only
// benchmarks; scripts/bench-backend.sh runs them and prints the table for docs/benchmarks.md.
package bench
