//go:build race

package pluginhost

// raceEnabled: the test binary has the race detector, so the plugins it
// launches are built with it too.
const raceEnabled = true
