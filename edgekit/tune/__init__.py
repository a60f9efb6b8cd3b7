"""Searching the best deployment per device: trials are real builds, validated and profiled."""
