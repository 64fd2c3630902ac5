"""Parsers for /sys files: bytes in, values out, no I/O (the collectors
read, through the backend's read_files and list_dir)."""
