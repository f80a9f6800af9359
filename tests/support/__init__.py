"""Helpers shared by the test tiers: migrated databases and live in-process servers."""
