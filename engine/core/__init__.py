"""Column names, defaults, project errors, strict JSON and atomic file writes: used by every layer."""
