"""The participant commands of ``damba``: a client of the REST API over HTTP.

Every command talks to the server at DAMBA_URL (or --url). It prints text
for people, or with --json the API's JSON reply as received, and it exits 1
with the API's sentence when the request fails.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
import orjson
from rich.console import Console

from damba.client import credentials
from damba.client.api import ApiClient, ApiError, Reply
from damba.client.draw import draw_flow, table
from damba.dashboard.flow import route_flow, session_flow, stopped_from
from damba.dashboard.formats import clock, moment, step_label
from damba.keys import ROUTE_ID_PATTERN, SESSION_ID_PATTERN

DEFAULT_URL = "http://127.0.0.1:8000"
# Times `damba watch` reconnects in a row without getting a stream before it
# gives up, and the seconds it waits between tries when the server names none.
WATCH_RECONNECTS = 5
WATCH_RETRY_SECONDS = 2.0


class Client:
    """The API client, the output mode and the console of one command."""

    def __init__(self, url: str, as_json: bool) -> None:
        self.url = url
        self.api = ApiClient(url)
        self.as_json = as_json
        self.console = Console(highlight=False)

    def fail(self, error: ApiError) -> NoReturn:
        """Print ``error`` (as JSON in --json mode) and exit with status 1."""
        if self.as_json:
            click.echo(orjson.dumps(error.body).decode())
        else:
            click.echo(f"Error: {error.desc}", err=True)
        sys.exit(1)

    def call(self, request: Callable[[], Reply]) -> Reply:
        """Run one API request, exiting with the API's sentence if it fails."""
        try:
            return request()
        except ApiError as error:
            self.fail(error)

    def show(self, reply: Reply, render: Callable[[Reply], None]) -> None:
        """Print ``reply`` as received in --json mode, else as ``render`` draws it."""
        if self.as_json:
            click.echo(reply.text.strip())
        else:
            render(reply)

    def key(self) -> str:
        """Return the access key: DAMBA_KEY, else the one saved for this server."""
        from_env = os.environ.get("DAMBA_KEY", "").strip()
        if from_env:
            return from_env
        saved = self.saved()
        if saved is None:
            self.fail(
                ApiError(
                    "no_key",
                    f"No access key for {self.url}; run `damba register` first, "
                    f"or set DAMBA_KEY to a key the server gave you.",
                )
            )
        loose = credentials.loose_permissions()
        if loose is not None:
            click.echo(f"Warning: others may read {loose}; run `chmod 600 {loose}`.", err=True)
        return saved.key

    def saved(self) -> credentials.Credential | None:
        try:
            return credentials.load(self.url)
        except credentials.CredentialsError as error:
            self.fail(ApiError("bad_credentials", str(error)))


def client_command(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add --url and --json to a command and pass it a Client as ``client``."""

    @click.option(
        "--json", "as_json", is_flag=True,
        help="Print the API's JSON reply as received instead of text, for scripts.",
    )
    @click.option(
        "--url", envvar="DAMBA_URL", default=DEFAULT_URL, show_default=True,
        help="Base URL of the Damba server; the DAMBA_URL variable sets it too.",
    )
    @functools.wraps(function)
    def wrapper(url: str, as_json: bool, **options: Any) -> Any:
        return function(Client(url, as_json), **options)

    return wrapper


def session_target(value: str) -> tuple[str, str]:
    """Return (id, "route" or "session") for a route id or a session id."""
    if ROUTE_ID_PATTERN.match(value):
        return value, "route"
    if SESSION_ID_PATTERN.match(value):
        return value, "session"
    raise click.BadParameter(
        f"{value[:64]!r} is neither a route id ('r' and 12 hex digits) nor a "
        f"session id ('s' and 16 hex digits).",
        param_hint="ID",
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def when(stamp: str | None) -> str:
    """Format an ISO 8601 UTC time for a table column headed "(UTC)"."""
    return moment(stamp).removesuffix(" UTC")


def echo_desc(reply: Reply) -> None:
    if reply.get("desc"):
        click.echo(reply["desc"])


# ---------------------------------------------------------------- participant


@click.command()
@click.option("--name", help="Your public name, 1 to 80 printable characters; "
              "the server picks one when it is left out.")
@click.option("--replace", is_flag=True,
              help="Save the new key over a key already saved for this server.")
@client_command
def register(client: Client, name: str | None, replace: bool) -> None:
    """Register as a participant and save your access key.

    The key is saved in $XDG_CONFIG_HOME/damba/credentials.json (mode 0600),
    one key per server URL, and never printed except by --json.
    """
    saved = client.saved()
    if saved is not None and not replace:
        client.fail(
            ApiError(
                "already_registered",
                f"A key for {client.url} is already saved, for {saved.name!r}; run "
                f"`damba leave` first, or pass --replace to save the new key over it.",
            )
        )
    reply = client.call(lambda: client.api.add_user(name))
    try:
        path = credentials.save(client.url, credentials.Credential(reply["uid"], reply["name"]))
    except credentials.CredentialsError as error:
        client.fail(ApiError("bad_credentials", f"{error} The key was not saved."))

    def render(reply: Reply) -> None:
        click.echo(f"Registered {reply['name']} at {client.url}.")
        click.echo(f"Your access key is saved in {path}, readable by you alone.")
        if os.environ.get("DAMBA_KEY"):
            click.echo("Note: DAMBA_KEY is set, and commands use it instead of the saved key.")

    client.show(reply, render)


@click.command()
@client_command
def leave(client: Client) -> None:
    """Leave the service: stop your sessions, delete your routes, forget your key."""
    key = client.key()
    try:
        reply = client.api.kill_user(key)
    except ApiError as error:
        saved = client.saved()
        if error.code == "unknown_user" and saved is not None and saved.key == key:
            credentials.forget(client.url)
            click.echo(f"The saved key for {client.url} was unknown there; it is deleted.",
                       err=True)
        client.fail(error)
    saved = client.saved()
    if saved is not None and saved.key == key:
        credentials.forget(client.url)
    client.show(reply, echo_desc)


@click.command()
@client_command
def me(client: Client) -> None:
    """Show your participant record: your routes and your running sessions."""
    reply = client.call(lambda: client.api.user(client.key()))

    def render(reply: Reply) -> None:
        user = reply["user"]
        click.echo(
            f"{user['name']}, registered {moment(user['joined'])}: "
            f"{plural(user['sessions_started'], 'session')} started, "
            f"{user['sessions_finished']} finished, {user['sessions_stopped']} stopped."
        )
        click.echo(f"\nYour routes: {len(user['routes'])}")
        if user["routes"]:
            client.console.print(routes_table(user["routes"]))
        click.echo(f"\nYour running sessions: {len(user['sessions'])}")
        if user["sessions"]:
            client.console.print(sessions_table(user["sessions"]))

    client.show(reply, render)


@click.command()
@client_command
def info(client: Client) -> None:
    """Show the service summary: version, counts against limits, stream length."""
    reply = client.call(client.api.info)

    def render(reply: Reply) -> None:
        counts, limits = reply["counts"], reply["limits"]
        rows = [
            ("participants", counts["users"], limits["maxusers"]),
            ("routes", counts["routes"], limits["maxroutes"]),
            ("running sessions", counts["active_sessions"], ""),
            ("sessions started", counts["sessions"], ""),
            ("events", reply["stream"]["length"], ""),
        ]
        click.echo(
            f"Damba {reply['version']} at {client.url}, "
            f"at most {plural(limits['maxsteps'], 'step')} a route."
        )
        client.console.print(table(("", "COUNT", "LIMIT"), rows))

    client.show(reply, render)


# ---------------------------------------------------------------- routes


def routes_table(routes: list[dict[str, Any]]):
    """Build the table of routes; RUNNING only where the API counts them."""
    counted = all("active_sessions" in r for r in routes)
    columns = ["ROUTE", "NAME", "OWNER", "STEPS"] + (["RUNNING"] if counted else [])
    rows = []
    for r in routes:
        row = [r["rid"], r["name"], r["owner"], len(r["steps"])]
        if counted:
            row.append(r["active_sessions"])
        rows.append(row + [when(r["created"])])
    return table(columns + ["CREATED (UTC)"], rows)


@click.group()
def route() -> None:
    """Add, list, show and delete routes."""


@route.command("add")
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--steps", type=click.IntRange(min=1),
              help="Generate a route of this many steps instead of reading FILE.")
@client_command
def route_add(client: Client, file: str | None, steps: int | None) -> None:
    """Store a route from FILE, written in the route language, or from --steps.

    A FILE of "-" reads the route text from standard input.
    """
    if (file is None) == (steps is None):
        raise click.UsageError("Give either a route FILE or --steps N, not both or neither.")
    key = client.key()
    if steps is not None:
        reply = client.call(lambda: client.api.add_route_steps(key, steps))
    else:
        text = read_text(file)
        reply = client.call(lambda: client.api.add_route_text(key, text))

    def render(reply: Reply) -> None:
        click.echo(f"{reply['desc']} Its id is {reply['rid']}.")
        route = reply["route"]
        nodes = route_flow(route["name"], route["steps"])
        client.console.print(draw_flow(nodes, "outline", client.console.width))

    client.show(reply, render)


def read_text(file: str) -> str:
    """Read a route file, or standard input for "-", as UTF-8."""
    try:
        if file == "-":
            return sys.stdin.read()
        return Path(file).read_text(encoding="utf-8")
    except OSError as error:
        raise click.FileError(file, error.strerror) from None
    except UnicodeDecodeError:
        raise click.FileError(file, "it is not UTF-8 text") from None


@route.command("list")
@client_command
def route_list(client: Client) -> None:
    """List every route, with the sessions running on each."""
    reply = client.call(client.api.routes)

    def render(reply: Reply) -> None:
        if not reply["routes"]:
            click.echo("No routes yet; add one with `damba route add`.")
            return
        client.console.print(routes_table(reply["routes"]))

    client.show(reply, render)


@route.command("show")
@click.argument("rid")
@click.option("--text", "with_text", is_flag=True,
              help="Also print the route's text, as it was stored.")
@client_command
def route_show(client: Client, rid: str, with_text: bool) -> None:
    """Draw route RID as a flow, with how many sessions stand at each step."""
    reply = client.call(lambda: client.api.route(rid))

    def render(reply: Reply) -> None:
        route = reply["route"]
        click.echo(
            f"Route {route['name']} ({route['rid']}) by {route['owner']}: "
            f"{plural(len(route['steps']), 'step')}, "
            f"{plural(route['active_sessions'], 'running session')}."
        )
        nodes = route_flow(route["name"], route["steps"], route["active_by_step"])
        client.console.print(draw_flow(nodes, "route", client.console.width))
        if with_text:
            click.echo()
            click.echo(route["text"].rstrip("\n"))

    client.show(reply, render)


@route.command("delete")
@click.argument("rid")
@client_command
def route_delete(client: Client, rid: str) -> None:
    """Delete route RID, which you own; its running sessions stop."""
    key = client.key()
    reply = client.call(lambda: client.api.delete_route(key, rid))
    client.show(reply, echo_desc)


# ---------------------------------------------------------------- sessions


def sessions_table(sessions: list[dict[str, Any]]):
    """Build the table of running sessions."""
    rows = [
        (s["sid"], s["route"], step_label(s["step"], s["total_steps"]), s["name"], clock(s["started"]))
        for s in sessions
    ]
    return table(("SESSION", "ROUTE", "STEP", "AT", "STARTED (UTC)"), rows, ("ROUTE", "AT"))


@click.group()
def session() -> None:
    """Join routes, step and stop your sessions, and show where they stand."""


@session.command("join")
@click.argument("rid")
@client_command
def session_join(client: Client, rid: str) -> None:
    """Start a session of route RID, standing at its START."""
    key = client.key()
    reply = client.call(lambda: client.api.join(key, rid))
    client.show(reply, echo_desc)


@session.command("step")
@click.argument("target", metavar="ID")
@client_command
def session_step(client: Client, target: str) -> None:
    """Move a session to its next step; past the last step it finishes.

    ID is the session id, or the id of the route you run it on.
    """
    key = client.key()
    target, by = session_target(target)
    reply = client.call(lambda: client.api.move("step", key, target, by))
    client.show(reply, echo_desc)


@session.command("stop")
@click.argument("target", metavar="ID")
@client_command
def session_stop(client: Client, target: str) -> None:
    """Stop a session early.

    ID is the session id, or the id of the route you run it on.
    """
    key = client.key()
    target, by = session_target(target)
    reply = client.call(lambda: client.api.move("stop", key, target, by))
    client.show(reply, echo_desc)


def step_names(client: Client, session: Reply) -> list[str]:
    """Return the names of a session's steps, from its route if it still exists.

    A deleted route leaves the names of the steps the session reached, and
    "step N" for the others.
    """
    try:
        return client.api.route(session["rid"])["route"]["steps"]
    except ApiError as error:
        if error.code != "unknown_route":
            client.fail(error)
    reached = {entry["step"]: entry["name"] for entry in session["trace"]}
    return [reached.get(number, f"step {number}") for number in range(1, session["total_steps"] + 1)]


def standing(session: Reply) -> str:
    """Say where a session is: its step while it runs, how it ended otherwise."""
    if session["status"] == "running":
        return f"running, at {step_label(session['step'], session['total_steps'])}, {session['name']!r}"
    if session["status"] == "finished":
        return f"finished at STOP, {moment(session['ended'])}"
    stopped_on = stopped_from(session)
    return f"stopped at {step_label(stopped_on, session['total_steps'])}, {moment(session['ended'])}"


@session.command("show")
@click.argument("sid")
@client_command
def session_show(client: Client, sid: str) -> None:
    """Draw session SID's route with the session's place marked, and its trace."""
    reply = client.call(lambda: client.api.session_info(sid))

    def render(session: Reply) -> None:
        click.echo(
            f"Session {session['sid']} of {session['user']} on route {session['route']} "
            f"({session['rid']}): {standing(session)}."
        )
        nodes = session_flow(session, step_names(client, session))
        client.console.print(draw_flow(nodes, "session", client.console.width, clock))
        rows = [
            (step_label(entry["step"], session["total_steps"]), entry["name"], when(entry["at"]))
            for entry in session["trace"]
        ]
        click.echo("\nTrace:")
        client.console.print(table(("STEP", "NAME", "REACHED (UTC)"), rows))

    client.show(reply, render)


@session.command("list")
@client_command
def session_list(client: Client) -> None:
    """List your running sessions."""
    reply = client.call(lambda: client.api.user(client.key()))

    def render(reply: Reply) -> None:
        sessions = reply["user"]["sessions"]
        if not sessions:
            click.echo("You run no session; join a route with `damba session join RID`.")
            return
        client.console.print(sessions_table(sessions))

    client.show(reply, render)


# ---------------------------------------------------------------- watch


def event_line(event: dict[str, Any]) -> str:
    """Format one event as a line: time, event, ids, step, and its sentence."""
    parts = [event["dt"][11:23], f"{event['event']:<9}", event["result"]]
    if event.get("code"):
        parts.append(event["code"])
    if event.get("rid"):
        parts.append(f"route {event['rid']}")
    if event.get("sid"):
        parts.append(f"session {event['sid']}")
    if event.get("step") is not None:
        parts.append(f"step {step_label(event['step'])}")
    if event.get("what"):
        parts.append(f"· {event['what']}")
    return "  ".join(parts)


@click.command()
@click.option("--after", help="Start after this stream id; by default after the newest event.")
@click.option("--from-start", is_flag=True, help="Start from the first event of the stream.")
@click.option("--count", type=click.IntRange(min=1),
              help="Exit after printing this many events; by default run until Ctrl-C.")
@client_command
def watch(client: Client, after: str | None, from_start: bool, count: int | None) -> None:
    """Follow the event stream live, one line per event.

    When the connection drops, it reconnects from the last event printed, so
    no event is missed or printed twice.
    """
    if after is not None and from_start:
        raise click.UsageError("Give --after or --from-start, not both.")
    position = "0" if from_start else after
    printed = 0
    failures = 0
    connected = False
    retry_seconds = WATCH_RETRY_SECONDS
    try:
        while True:
            try:
                for message in client.api.events(position):
                    connected, failures = True, 0
                    if message.retry is not None:
                        retry_seconds = message.retry / 1000
                    if message.event == "stream-error":
                        click.echo(f"Stream error: {orjson.loads(message.data)['desc']}", err=True)
                        break
                    if message.event != "message" or not message.data:
                        continue
                    event = orjson.loads(message.data)
                    position = message.id or event["id"]
                    print_event(client, message.data, event)
                    printed += 1
                    if count is not None and printed >= count:
                        return
                wait = retry_seconds
            except ApiError as error:
                failures += 1
                # A busy server is worth waiting for; an unreachable one only
                # after it has served this command once.
                retryable = error.code == "streams_busy" or (
                    connected and error.code == "unreachable"
                )
                if not retryable or failures > WATCH_RECONNECTS:
                    client.fail(error)
                wait = error.retry_after or retry_seconds
                click.echo(f"{error.desc} Retrying in {wait:g} s.", err=True)
            time.sleep(wait)
    except KeyboardInterrupt:
        return


def print_event(client: Client, data: str, event: dict[str, Any]) -> None:
    if client.as_json:
        click.echo(data)
    else:
        style = "red" if event["result"] != "ok" else None
        client.console.print(event_line(event), style=style, markup=False, soft_wrap=True)


def add_commands(group: click.Group) -> None:
    """Register the participant commands on the ``damba`` group."""
    for command in (register, leave, me, info, route, session, watch):
        group.add_command(command)
