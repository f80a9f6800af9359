"""Ephemeral state that travels between nodes but never touches the change log: who is typing,
who is online. Nothing here is stored, replayed or caught up on."""
