//go:build race

package replay

// raceEnabled: the race detector makes every request several times more expensive, so the open-loop accuracy
// test asks for a lower rate under it (the machine must stay below saturation for the test to mean anything).
const raceEnabled = true
