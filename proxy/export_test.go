// Test-only access to the proxy's package-level counters, for the external proxy_test package.
package proxy

// UpstreamBytesOut returns the bytes forwarded to memcached so far by every proxy in this process.
func UpstreamBytesOut() uint64 { return upBytesOut.Get() }

// BufferClosed returns how many client connections were closed for passing max_client_buffer.
func BufferClosed() uint64 { return connsOverflow.Get() }

// IdleClosed returns how many client connections the idle timeout closed.
func IdleClosed() uint64 { return connsIdleClosed.Get() }
