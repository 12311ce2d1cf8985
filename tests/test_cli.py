"""The participant commands of `damba`, run as subprocesses against a real server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest
import requests
from tests.servers import free_port, running_server

ROUTE_TEXT = "# an order\nSTART order\nSTEP check stock\nSTEP take payment\nSTOP\n"


@pytest.fixture
def server(redis_url, key_prefix, tmp_path):
    with running_server(redis_url, key_prefix, tmp_path, {"DAMBA_STREAM_SECONDS": "2"}) as server:
        yield server


class Cli:
    """Runs `damba` with its own config dir, pointed at one server."""

    def __init__(self, url: str, config_dir) -> None:
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("DAMBA_")
        }
        self.env.update(
            DAMBA_URL=url, XDG_CONFIG_HOME=str(config_dir), COLUMNS="100", NO_COLOR="1"
        )
        self.credentials = config_dir / "damba" / "credentials.json"

    def __call__(self, *args: str, ok: bool = True, stdin: str | None = None,
                 env: dict | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "damba", *args],
            env={**self.env, **(env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert result.returncode == 0, result.stderr + result.stdout
        return result

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "--json").stdout)

    def saved_key(self) -> str:
        servers = json.loads(self.credentials.read_text())["servers"]
        (entry,) = servers.values()
        return entry["key"]


@pytest.fixture
def cli(server, tmp_path):
    return Cli(server.url, tmp_path / "config")


def api(server, path: str, **options) -> dict:
    """POST to the API directly, for set-up steps that are not under test."""
    reply = requests.post(f"{server.url}/api/v1{path}", timeout=30, **options)
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def add_route(server, key: str) -> str:
    headers = {"Content-Type": "text/plain"}
    return api(server, f"/addroute/uid/{key}", data=ROUTE_TEXT, headers=headers)["rid"]


@pytest.fixture
def route_file(tmp_path):
    path = tmp_path / "order.route"
    path.write_text(ROUTE_TEXT, encoding="utf-8")
    return path


def test_register_saves_key(cli):
    """register saves the key in the config dir, readable by its owner alone."""
    result = cli("register", "--name", "alice")
    assert "Registered alice" in result.stdout
    assert stat.S_IMODE(cli.credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.credentials.parent.stat().st_mode) == 0o700
    key = cli.saved_key()
    assert len(key) == 32
    assert key not in result.stdout + result.stderr
    assert cli.json("me")["user"]["name"] == "alice"


def test_register_twice_rejected(cli):
    """A second register for the same server is rejected unless --replace is given."""
    cli("register", "--name", "alice")
    first = cli.saved_key()
    again = cli("register", "--name", "bob", ok=False)
    assert again.returncode == 1
    assert "already saved" in again.stderr
    assert cli.saved_key() == first
    cli("register", "--name", "bob", "--replace")
    assert cli.saved_key() != first
    assert cli.json("me")["user"]["name"] == "bob"


def test_register_json_prints_reply(cli):
    """register --json prints the API's reply, key included, for scripts."""
    reply = cli.json("register", "--name", "alice")
    assert reply["result"] == "ok"
    assert reply["uid"] == cli.saved_key()


def test_key_from_environment(cli, server):
    """DAMBA_KEY is used in place of the saved key."""
    cli("register", "--name", "alice")
    bob = api(server, "/user/addme?name=bob")["uid"]
    reply = json.loads(cli("me", "--json", env={"DAMBA_KEY": bob}).stdout)
    assert reply["user"]["name"] == "bob"


def test_no_key_error(cli):
    """A command that needs a key prints how to get one and exits 1."""
    result = cli("route", "add", "--steps", "2", ok=False)
    assert result.returncode == 1
    assert "damba register" in result.stderr


def test_route_add_from_file(cli, route_file):
    """route add stores a route from a file and draws it."""
    cli("register")
    result = cli("route", "add", str(route_file))
    assert "Stored route 'order' with 2 steps" in result.stdout
    assert "START order" in result.stdout
    assert "2. take payment" in result.stdout
    routes = cli.json("route", "list")["routes"]
    assert [route["name"] for route in routes] == ["order"]


def test_route_add_from_stdin(cli):
    """route add - reads the route text from standard input."""
    cli("register")
    reply = json.loads(cli("route", "add", "-", "--json", stdin=ROUTE_TEXT).stdout)
    assert reply["route"]["steps"] == ["check stock", "take payment"]


def test_route_add_steps(cli):
    """route add --steps stores a generated route of that many steps."""
    cli("register")
    reply = cli.json("route", "add", "--steps", "4")
    assert len(reply["route"]["steps"]) == 4


def test_route_add_needs_one_source(cli, route_file):
    """route add takes a FILE or --steps, not both and not neither."""
    cli("register")
    for args in ((), (str(route_file), "--steps", "2")):
        result = cli("route", "add", *args, ok=False)
        assert result.returncode == 2
        assert "either a route FILE or --steps" in result.stderr


def test_route_add_invalid_text(cli, tmp_path):
    """Invalid route text prints the API's sentence with the line number and exits 1."""
    cli("register")
    bad = tmp_path / "bad.route"
    bad.write_text("START a\nSTOP\n")
    result = cli("route", "add", str(bad), ok=False)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Line 2:")
    reply = json.loads(cli("route", "add", str(bad), "--json", ok=False).stdout)
    assert reply["result"] == "error"
    assert reply["code"] == "invalid_route"


def test_route_list_table(cli, route_file):
    """route list prints a table with a row a route."""
    cli("register", "--name", "alice")
    rid = cli.json("route", "add", str(route_file))["rid"]
    output = cli("route", "list").stdout
    header = output.splitlines()[0]
    assert "ROUTE" in header
    assert "RUNNING" in header
    row = next(line for line in output.splitlines() if rid in line)
    assert "order" in row
    assert "alice" in row


def test_route_show_counts(cli, server):
    """route show draws the flow with the running sessions at each step."""
    cli("register")
    rid = add_route(server, cli.saved_key())
    api(server, f"/join/uid/{cli.saved_key()}/route/{rid}")
    bob = api(server, "/user/addme")["uid"]
    api(server, f"/join/uid/{bob}/route/{rid}")
    api(server, f"/step/uid/{bob}/route/{rid}")
    output = cli("route", "show", rid, "--text").stdout
    assert "2 running sessions" in output
    start = next(line for line in output.splitlines() if "START order" in line)
    step = next(line for line in output.splitlines() if "1. check stock" in line)
    idle = next(line for line in output.splitlines() if "2. take payment" in line)
    assert start.rstrip().endswith("1 " + "█" * 16)
    assert step.rstrip().endswith("1 " + "█" * 16)
    assert idle.rstrip().endswith("0")
    assert "STEP take payment" in output


def test_session_walk(cli, route_file):
    """join, step by route id, step by session id and show trace a session to STOP."""
    cli("register", "--name", "alice")
    rid = cli.json("route", "add", str(route_file))["rid"]
    sid = cli.json("session", "join", rid)["sid"]
    assert "Moved to step 1 of 2" in cli("session", "step", rid).stdout
    shown = cli("session", "show", sid).stdout
    here = [line for line in shown.splitlines() if "◀ here" in line]
    assert len(here) == 1
    assert "1. check stock" in here[0]
    assert f"Session {sid} of alice" in shown
    cli("session", "step", sid)
    assert "finished" in cli("session", "step", sid).stdout
    shown = cli("session", "show", sid).stdout
    assert "finished at STOP" in shown
    assert "✔ finished" in shown
    assert "Trace:" in shown
    assert cli.json("session", "show", sid)["status"] == "finished"


def test_session_stop_and_list(cli, server):
    """session list shows running sessions; stop ends one and show marks where."""
    cli("register")
    key = cli.saved_key()
    rid = add_route(server, key)
    sid = api(server, f"/join/uid/{key}/route/{rid}")["sid"]
    assert sid in cli("session", "list").stdout
    api(server, f"/step/uid/{key}/session/{sid}")
    assert "Stopped session" in cli("session", "stop", rid).stdout
    assert "You run no session" in cli("session", "list").stdout
    shown = cli("session", "show", sid).stdout
    assert "stopped at 1 of 2" in shown
    assert "■ stopped here" in shown


def test_session_step_ended(cli, server):
    """Stepping an ended session prints the API's sentence and exits 1."""
    cli("register")
    key = cli.saved_key()
    rid = add_route(server, key)
    sid = api(server, f"/join/uid/{key}/route/{rid}")["sid"]
    api(server, f"/stop/uid/{key}/session/{sid}")
    result = cli("session", "step", sid, ok=False)
    assert result.returncode == 1
    assert "has already stopped" in result.stderr
    reply = json.loads(cli("session", "step", sid, "--json", ok=False).stdout)
    assert reply["code"] == "session_ended"


def test_session_bad_id(cli):
    """An id that is neither a route id nor a session id is a usage error."""
    cli("register")
    result = cli("session", "step", "nonsense", ok=False)
    assert result.returncode == 2
    assert "neither a route id" in result.stderr


def test_session_show_deleted_route(cli, server):
    """session show still draws a session whose route was deleted."""
    cli("register")
    key = cli.saved_key()
    rid = add_route(server, key)
    sid = api(server, f"/join/uid/{key}/route/{rid}")["sid"]
    api(server, f"/step/uid/{key}/route/{rid}")
    assert "Deleted route" in cli("route", "delete", rid).stdout
    shown = cli("session", "show", sid).stdout
    assert "1. check stock" in shown
    assert "2. step 2" in shown
    assert "■ stopped here" in shown


def test_leave_forgets_key(cli, server):
    """leave removes the participant and deletes the saved key."""
    cli("register", "--name", "alice")
    add_route(server, cli.saved_key())
    result = cli("leave")
    assert "Removed alice" in result.stdout
    assert json.loads(cli.credentials.read_text())["servers"] == {}
    assert cli.json("route", "list")["routes"] == []


def test_info_counts(cli):
    """info prints the counts against the limits."""
    cli("register")
    output = cli("info").stdout
    participants = next(line for line in output.splitlines() if "participants" in line)
    cells = [cell.strip() for cell in participants.split("│")]
    assert cells == ["participants", "1", "10"]


def test_watch_follows_and_reconnects(cli, server):
    """watch resumes from its last event when the server ends a stream: none lost or twice."""
    key = api(server, "/user/addme")["uid"]
    rid = add_route(server, key)
    api(server, f"/join/uid/{key}/route/{rid}")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "damba", "watch", "--from-start", "--count", "6", "--json"],
        env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = [json.loads(watcher.stdout.readline()) for _ in range(4)]
        # The server ends each stream 2 s after it starts (DAMBA_STREAM_SECONDS),
        # plus at most one 1-s XREAD, so the next events need a new connection.
        time.sleep(5)
        api(server, f"/step/uid/{key}/route/{rid}")
        api(server, f"/step/uid/{key}/route/{rid}")
        rest = [json.loads(line) for line in watcher.stdout.read().splitlines()]
        assert watcher.wait(timeout=60) == 0
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert [event["event"] for event in first] == ["init", "adduser", "addroute", "startsess"]
    assert [event["event"] for event in rest] == ["stepsess", "stepsess"]
    assert [event["step"] for event in rest] == [1, 2]
    assert server.log().count("GET /api/v1/events/stream") >= 2


def test_watch_text_lines(cli):
    """watch prints one readable line an event."""
    cli("register", "--name", "alice")
    output = cli("watch", "--from-start", "--count", "2").stdout.splitlines()
    assert len(output) == 2
    assert "init" in output[0]
    assert "adduser" in output[1]
    assert "Registered alice" in output[1]


def test_unreachable_server(tmp_path):
    """An unreachable server gives one sentence naming the URL, and exit 1."""
    cli = Cli(f"http://127.0.0.1:{free_port()}", tmp_path / "config")
    result = cli("route", "list", ok=False)
    assert result.returncode == 1
    assert "Cannot reach Damba at http://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_hides_key(tmp_path):
    """The unreachable-server message never shows the key from the URL path."""
    cli = Cli(f"http://127.0.0.1:{free_port()}", tmp_path / "config")
    key = "A" * 32
    result = cli("me", ok=False, env={"DAMBA_KEY": key})
    assert result.returncode == 1
    assert key not in result.stderr


@pytest.mark.parametrize(
    "command,option",
    [
        (["register"], "--name"),
        (["register"], "--replace"),
        (["route", "add"], "--steps"),
        (["route", "show"], "--text"),
        (["watch"], "--after"),
        (["watch"], "--count"),
        (["session", "step"], "--url"),
        (["leave"], "--json"),
    ],
)
def test_help_describes_options(command, option, tmp_path):
    """--help on each command describes in words what each option sets."""
    cli = Cli("http://127.0.0.1:1", tmp_path / "config")
    output = cli(*command, "--help").stdout
    block = output[output.index(f"  {option}") :].split("\n  -")[0]
    words = [word for word in block.split() if word.isalpha()]
    assert len(words) >= 4, block
