"""Fault injection for tests: a small HTTPS proxy that can break a real API server on cue."""
