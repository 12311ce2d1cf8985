"""The ``damba`` command line."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from damba import __version__
from damba.config import PROFILES, SettingsError, apply_profile, load_settings
from damba.errors import DambaError
from damba.web.logs import configure_logging


def _settings():
    try:
        return load_settings()
    except SettingsError as error:
        raise click.UsageError(str(error)) from None


@click.group()
@click.version_option(__version__, prog_name="damba")
def main() -> None:
    """Damba: an event-sourced business-process engine with a REST API."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="DAMBA_HOST",
              show_envvar=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              envvar="DAMBA_PORT", show_envvar=True, help="TCP port to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              envvar="DAMBA_WORKERS", show_envvar=True, help="Number of worker processes.")
# Each worker shares one pool of 100 Redis connections among its threads.
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 100),
              envvar="DAMBA_THREADS", show_envvar=True,
              help="Threads per worker process; 1 runs gunicorn's sync workers. "
                   "WSGI only.")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              envvar="DAMBA_ACCESS_LOG", show_envvar=True,
              help="Also write the server's access log, keys redacted.")
@click.option("--asgi", is_flag=True, default=False,
              help="Serve the ASGI app under uvicorn instead of the WSGI app under "
                   "gunicorn; each worker runs one event loop.")
@click.option("--profile", default="default", show_default=True,
              type=click.Choice(sorted(PROFILES)),
              help="Named defaults for DAMBA_MAXUSERS, DAMBA_MAXROUTES, DAMBA_MAXSTEPS and "
                   "DAMBA_KEEPALIVE; 'load' raises them for load runs. Variables already "
                   "set win.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, threads: int,
          access_log: bool, asgi: bool, profile: str) -> None:
    """Serve the API under gunicorn, or under uvicorn with --asgi.

    Without DAMBA_REDIS_URL a private Valkey server starts first and its data
    is discarded on exit.
    """
    from damba.serve import serve as run_server
    from damba.serve import serve_asgi

    # DAMBA_THREADS may be set for both servers, so only the option itself is an error.
    if asgi and ctx.get_parameter_source("threads") is ParameterSource.COMMANDLINE:
        raise click.UsageError(
            "--threads applies to the WSGI server only; an ASGI worker serves "
            "concurrent requests on one event loop, so drop --threads or --asgi."
        )
    # The profile goes into os.environ so that the workers, which read their
    # settings from the environment, get the same limits.
    applied = apply_profile(profile, os.environ)
    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    if applied:
        logging.getLogger("damba.serve").info(
            "profile %s set %s", profile,
            ", ".join(f"{name}={value}" for name, value in applied.items()),
        )
    try:
        if asgi:
            serve_asgi(settings, host, port, workers, access_log)
        else:
            run_server(settings, host, port, workers, threads, access_log)
    except DambaError as error:
        raise click.ClickException(error.message) from None


def _client(settings):
    """Connect to DAMBA_REDIS_URL, failing with one line if it is unset or down."""
    from damba.store.sync_store import STORE_ERRORS, connect

    if not settings.redis_url:
        raise click.UsageError(
            "DAMBA_REDIS_URL is not set; set it to the Redis that contains the event stream."
        )
    client = connect(settings, settings.redis_url)
    try:
        client.ping()
    except STORE_ERRORS as error:
        raise click.ClickException(
            f"Cannot reach the Redis at DAMBA_REDIS_URL ({error}); check that it runs."
        ) from None
    return client


def _require_stream(client, settings) -> None:
    """Fail when the prefix has no event stream, which usually means a typo."""
    if not client.exists(settings.stream_key):
        raise click.ClickException(
            f"There is no event stream at {settings.stream_key}; check "
            f"DAMBA_KEY_PREFIX and DAMBA_REDIS_URL."
        )


@main.command()
def rebuild() -> None:
    """Wipe the read models and rebuild them by replaying the event stream."""
    from damba.replay import rebuild as rebuild_models

    settings = _settings()
    client = _client(settings)
    _require_stream(client, settings)
    state = rebuild_models(client, settings.key_prefix)
    click.echo(
        f"Rebuilt {len(state.docs)} documents and {len(state.sets)} sets "
        f"from {settings.stream_key}."
    )


@main.command()
def verify() -> None:
    """Replay the event stream in memory and compare it with the live read models."""
    from damba.replay import verify as verify_models

    settings = _settings()
    client = _client(settings)
    _require_stream(client, settings)
    differences = verify_models(client, settings.key_prefix)
    if not differences:
        click.echo(f"The read models under {settings.key_prefix!r} match the event stream.")
        return
    for difference in differences:
        click.echo(difference.describe())
    click.echo(f"{len(differences)} differences.", err=True)
    sys.exit(1)


def _add_client_commands() -> None:
    from damba.client.cli import add_commands

    add_commands(main)


_add_client_commands()
@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write the report into.  [default: ./reports-out/<UTC timestamp>/]")
@click.option("--locust-csv", metavar="PREFIX", default=None,
              help="The prefix given to `locust --csv`; adds Locust's request latency "
                   "percentiles and failures to the report.")
@click.option("--page-size", default=10000, show_default=True,
              type=click.IntRange(1, 1_000_000),
              help="Stream entries read per XRANGE call.")
@click.option("--progress/--no-progress", default=None,
              help="Show a progress bar while reading.  [default: on a terminal only]")
def report(out: Path | None, locust_csv: str | None, page_size: int,
           progress: bool | None) -> None:
    """Write the statistics report of the event stream: HTML, CSV and JSON."""
    from reports.build import build_report
    from reports.stream import ReportError

    settings = _settings()
    client = _client(settings)
    try:
        written = build_report(client, settings.stream_key, out, locust_csv, page_size,
                               progress)
    except ReportError as error:
        raise click.ClickException(str(error)) from None
    finally:
        client.close()
    sessions = written.summary["sessions"]
    click.echo(
        f"Read {written.summary['events']:,} events: {sessions['started']:,} sessions "
        f"started, {sessions['finished']:,} finished, {sessions['stopped']:,} stopped."
    )
    click.echo(f"Report written to {written.folder}/")
    click.echo(f"Open {written.page}")
