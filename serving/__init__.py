"""Live recognition over a websocket: protocol, model store following the registry, and the server."""
