"""Statistics reports over the event stream."""
