"""``damba serve``: run the API under gunicorn, or under uvicorn with
``--asgi``, with a Redis to talk to.

With no DAMBA_REDIS_URL the parent process starts one embedded Valkey before
any worker starts, and stops it when the server exits. The workers inherit
its URL through the environment.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit, urlunsplit

from gunicorn.app.base import BaseApplication

from damba import __version__, commands
from damba.config import Settings
from damba.embedded import EmbeddedValkey
from damba.errors import DambaError
from damba.store.sync_store import STORE_ERRORS, RedisStore, connect

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
        client.ping()
    except STORE_ERRORS as error:
        client.close()
        raise DambaError(
            "store_unavailable",
            f"Cannot reach the Redis at {describe_url(url)} ({error}); start it or fix "
            f"DAMBA_REDIS_URL.",
        ) from None
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
                     graceful_timeout: int = 20, keepalive: int = 2) -> dict:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": (
            "damba.gunicorn_workers.JsonThreadWorker"
            if threads > 1
            else "damba.gunicorn_workers.JsonSyncWorker"
        ),
        "logger_class": "damba.gunicorn_logging.RedactingLogger",
        # Seconds a worker has to finish its in-flight requests after SIGTERM,
        # before gunicorn kills it. Commits are atomic Lua scripts, so a
        # killed request leaves either its whole event or nothing.
        "graceful_timeout": graceful_timeout,
        "timeout": 60,
        "keepalive": keepalive,
        "errorlog": "-",
        "loglevel": "info",
        # gunicorn 25.1+ opens a control socket at one fixed path under $HOME by
        # default, which several servers on one machine would share and which
        # a read-only container file system cannot hold. Damba does not use it.
        "control_socket_disable": True,
    }
    if access_log:
        options["accesslog"] = "-"
    return options


@contextmanager
def provide_redis(settings: Settings) -> Iterator[str]:
    """Yield the URL of the Redis to serve from, its event stream opened.

    Starts embedded Valkey when DAMBA_REDIS_URL is unset and stops it on
    exit. The URL is put in the environment, where the workers read it.
    """
    with ExitStack() as stack:
        url = settings.redis_url
        if url:
            log.info("Redis in use: %s (from DAMBA_REDIS_URL)", describe_url(url))
        else:
            url = stack.enter_context(EmbeddedValkey())
            log.info("Redis in use: embedded Valkey at %s; its data is lost on exit", url)
        os.environ["DAMBA_REDIS_URL"] = url
        open_stream(settings, url)
        yield url


def log_serving(settings: Settings, server: str, host: str, port: int, workers: int) -> None:
    log.info(
        "serving Damba %s under %s on http://%s:%d with %d workers, prefix %r, limits %s",
        __version__, server, host, port, workers, settings.key_prefix, settings.limits,
    )


def serve(settings: Settings, host: str, port: int, workers: int, threads: int,
          access_log: bool = False) -> None:
    """Start Redis if needed, open the stream, and run gunicorn until it exits."""
    with provide_redis(settings):
        log_serving(settings, "gunicorn", host, port, workers)
        options = gunicorn_options(
            host, port, workers, threads, access_log,
            settings.graceful_timeout, settings.keepalive,
        )
        GunicornServer("damba.wsgi:create_app()", options).run()


def serve_asgi(settings: Settings, host: str, port: int, workers: int,
               access_log: bool = False) -> None:
    """Start Redis if needed, open the stream, and run uvicorn until it exits."""
    import uvicorn

    from damba.uvicorn_logging import log_config

    # uvicorn running one worker in this process shuts down on SIGTERM, puts
    # back the handler it found and raises the signal again. With Python's
    # default handler that would end the process before the embedded Valkey
    # is stopped. This handler ends it through SystemExit, which stops Valkey.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with provide_redis(settings):
        log_serving(settings, "uvicorn", host, port, workers)
        uvicorn.run(
            "damba.asgi:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=log_config(settings.log_level, access_log, settings.log_format),
            access_log=access_log,
            lifespan="on",
            http="damba.uvicorn_protocol:JsonErrorsHttpToolsProtocol",
            # Seconds a worker has to finish its requests after SIGTERM, as
            # gunicorn's graceful_timeout above.
            timeout_graceful_shutdown=settings.graceful_timeout,
        )


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(0)
