"""HTTP and WebSocket entry points: parse, call one service method, map known errors."""
