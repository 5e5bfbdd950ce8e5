"""One module per kernel subsystem. Each reads through a `Reader` and parses with pure functions."""
