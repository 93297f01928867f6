//go:build race

package analyze

// raceEnabled: the race detector makes Add ~10× slower and this package has no concurrency to check, so the
// statistical tests run a reduced set of cases under it (see fullScale).
const raceEnabled = true
