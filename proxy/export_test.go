// Test-only access to the proxy's package-level counters, for the external proxy_test package.
package proxy

// UpstreamBytesOut returns the bytes forwarded to memcached so far by every proxy in this process.
func UpstreamBytesOut() uint64 { return upBytesOut.Get() }

// BufferClosed returns how many client connections were closed for passing max_client_buffer.
func BufferClosed() uint64 { return connsOverflow.Get() }

// IdleClosed returns how many client connections the idle timeout closed.
func IdleClosed() uint64 { return connsIdleClosed.Get() }

// SlowClosed returns how many client connections request_timeout closed.
func SlowClosed() uint64 { return connsSlowClosed.Get() }

// BudgetClosed returns how many client connections max_buffered_bytes closed.
func BudgetClosed() uint64 { return budgetClosed.Get() }

// ReadPauses returns how many times reading was paused, clients and upstreams.
func ReadPauses() (client, upstream uint64) { return pausesClient.Get(), pausesUpstream.Get() }

// ProtocolErrors returns the client protocol errors and the upstream connections memcached closed with answers
// owed.
func ProtocolErrors() (client, upstreamClosed uint64) {
	return clientErrors.Get(), upClosedErrors.Get()
}
