"""Accounts and authentication: who is speaking, decided in one layer for HTTP and sockets."""
