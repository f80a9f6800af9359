"""The change log: every lasting change in one monotonic sequence that clients and relays
resume from, and how each change becomes a frame on the wire."""
