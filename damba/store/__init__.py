"""Redis persistence: the scripts, the payloads they take, and the clients."""
