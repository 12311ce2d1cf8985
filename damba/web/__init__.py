"""The HTTP layer: endpoints, request bodies, errors and logging."""
