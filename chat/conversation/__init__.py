"""A living conversation: edits, deletes, reactions, replies and mentions, all on the change log."""
