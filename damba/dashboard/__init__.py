"""The web dashboard: server-rendered pages of routes, sessions and reports.

Page data comes from the query generators and templates render it, so
everything here but the thin resources in ``damba.dashboard.wsgi`` and
``damba.dashboard.asgi`` is free of network I/O and serves both apps.
"""
