"""Servers that `chat` is measured against: benchmark code, not product code."""
