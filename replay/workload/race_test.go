//go:build race

package workload

// raceEnabled: the race detector makes generation and analysis ~10× slower and these statistical tests have no
// concurrency to check, so they draw fewer events under it (see fidelityEvents).
const raceEnabled = true
