"""Benchmarks of the mission service against the plain things a user would write instead (`make bench`)."""
