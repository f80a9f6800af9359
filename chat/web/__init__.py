"""The server-rendered pages and the forms that work without JavaScript."""
