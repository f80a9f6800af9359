"""The benchmark harness for `chat`: ``python -m bench --help``."""
