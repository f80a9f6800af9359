"""Rooms: public and private conversations and direct messages, their members, and who may do
what in them (decided in one place: chat.rooms.policy)."""
