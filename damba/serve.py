"""``damba serve``: run the API under gunicorn, with a Redis to talk to.

With no DAMBA_REDIS_URL the master process starts one embedded Valkey before
any worker starts and stops it when gunicorn exits; the workers inherit its
URL through the environment.
"""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack
from urllib.parse import urlsplit, urlunsplit

from gunicorn.app.base import BaseApplication

from damba import __version__, commands
from damba.config import Settings
from damba.embedded import EmbeddedValkey
from damba.store.sync_store import RedisStore, connect

log = logging.getLogger("damba.serve")


def describe_url(url: str) -> str:
    """Return ``url`` with any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def open_stream(settings: Settings, url: str) -> None:
    """Append the init event if this prefix has no stream yet."""
    client = connect(settings, url)
    try:
        store = RedisStore(client, settings.key_prefix)
        stream_id = store.open_stream(commands.init(__version__, settings.limits))
        if stream_id:
            log.info("opened event stream %s with init event %s", store.stream, stream_id)
        else:
            log.info("appending to existing event stream %s", store.stream)
    finally:
        client.close()


class GunicornServer(BaseApplication):
    """Runs a WSGI app factory under gunicorn with options given in code."""

    def __init__(self, app_uri: str, options: dict) -> None:
        self.app_uri = app_uri
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for name, value in self.options.items():
            self.cfg.set(name, value)

    def load(self):
        from damba.wsgi import create_app

        return create_app()


def gunicorn_options(host: str, port: int, workers: int, threads: int, access_log: bool,
                     keepalive: int = 2) -> dict:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "logger_class": "damba.gunicorn_logging.RedactingLogger",
        # Seconds a worker has to finish its requests after SIGTERM.
        "graceful_timeout": 20,
        "timeout": 60,
        "keepalive": keepalive,
        "errorlog": "-",
        "loglevel": "info",
    }
    if access_log:
        options["accesslog"] = "-"
    return options


def serve(settings: Settings, host: str, port: int, workers: int, threads: int,
          access_log: bool = False) -> None:
    """Start Redis if needed, open the stream, and run gunicorn until it exits."""
    with ExitStack() as stack:
        url = settings.redis_url
        if url:
            log.info("Redis in use: %s (from DAMBA_REDIS_URL)", describe_url(url))
        else:
            url = stack.enter_context(EmbeddedValkey())
            log.info("Redis in use: embedded Valkey at %s; its data is lost on exit", url)
        os.environ["DAMBA_REDIS_URL"] = url
        open_stream(settings, url)
        log.info(
            "serving Damba %s on http://%s:%d with %d workers, prefix %r, limits %s",
            __version__, host, port, workers, settings.key_prefix, settings.limits,
        )
        options = gunicorn_options(host, port, workers, threads, access_log, settings.keepalive)
        GunicornServer("damba.wsgi:create_app()", options).run()
