package media

// SetAfterFile makes Put stop with f's error between placing the file and
// inserting its row, as a crash there would.
func SetAfterFile(s *FileStore, f func() error) { s.afterFile = f }
