package server

import (
	"slices"
)

// Routes returns the pattern of every route the server registered
// ("METHOD /path"), in order, for tests that walk them all.
func (s *Server) Routes() []string { return slices.Clone(s.patterns) }
