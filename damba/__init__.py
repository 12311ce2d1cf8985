"""Damba: a small event-sourced business-process engine with a REST API."""

__version__ = "0.1.0"
