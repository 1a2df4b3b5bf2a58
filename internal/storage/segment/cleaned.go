package segment

// LoadIndexes loads a sealed segment's indexes now, rebuilding them from
// the data when their files are missing (a segment the cleaner just wrote
// has none), instead of at its first read.
func (s *Segment) LoadIndexes() error { return s.ensureIndexes() }
