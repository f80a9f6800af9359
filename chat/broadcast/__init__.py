"""Fan-out: a local hub of bounded per-connection queues, fed by a pluggable backend."""
