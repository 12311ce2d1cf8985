"""The statistics report over the event stream."""
