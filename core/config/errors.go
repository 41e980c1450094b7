package config

// Error is a configuration problem tied to one key (or to the file, when the
// file itself cannot be read). The daemon prints it as one line and exits 2.
type Error struct {
	Key     string // dotted key, or the file path for file-level problems
	Problem string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return "config: " + e.Problem
	}
	return "config: " + e.Key + ": " + e.Problem
}
