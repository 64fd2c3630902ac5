"""Parsers for /sys attribute files: each takes the file's bytes and does
no I/O (the collectors read)."""
