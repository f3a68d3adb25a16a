"""Synthetic scenarios for `antirelou simulate`: who texts the decoy number, when, and what.

Each module builds one family of scenarios from public facts (see docs/raids.md); all of them
share the number, text and timing helpers here. Everything is deterministic for a given seed.
"""
