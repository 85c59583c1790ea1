"""Bottom layer: pure tool logic (build argv / files, parse outputs, validate input).

Modules here perform no I/O at import and spawn nothing; they may read files only where a
function's job is to parse one that the caller names.
"""
