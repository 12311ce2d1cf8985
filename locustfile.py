"""Load runs for Damba: simulated participants using API v1 as people would.

    damba serve --profile load          # limits high enough for a load run
    locust -f locustfile.py --headless -u 200 -r 20 --run-time 2m \\
        --stop-timeout 30 --host http://127.0.0.1:8000

Each participant registers under a Unicode name and stores a route, then
repeats one of three behaviours, chosen by weight:

- walk: join a route (its own or another's), step to the end or stop early,
  now and then make a deliberate wrong move, and look at the result;
- browse: read /info, the route list, a route, its own record, a session;
- manage routes: store a route from text or from a step count, deleting its
  oldest route once it keeps the most it may.

It leaves (/user/killme) when the run stops. With --stop-timeout a walk in
progress finishes first; without it Locust stops participants mid-walk.

A call that should succeed fails in Locust when its status or body is wrong.
A deliberate wrong move (a step after the end, joining twice) succeeds only
when it gets its documented error. A step that fails because another
participant deleted the route, or left, counts as a success once
/info/route confirms the route is gone.

The mix and the think times are options, also shown in the web UI; see
``locust -f locustfile.py --help``. Request names leave out the /api/v1
prefix and put [key], [rid] and [sid] in place of ids, so that no access
key reaches Locust's statistics.
"""

from __future__ import annotations

import itertools
import logging
import random
import re
import secrets
from dataclasses import dataclass

import gevent
from locust import FastHttpUser, events, task
from locust.exception import StopUser

log = logging.getLogger("damba.locust")

API = "/api/v1"
KEY = re.compile(r"^[A-Za-z0-9_-]{32}$")
ROUTE_ID = re.compile(r"^r[0-9a-f]{12}$")
SESSION_ID = re.compile(r"^s[0-9a-f]{16}$")
END_STEP = 999

FIRST_NAMES = ("Ольга", "Jürgen", "Siobhán", "李雷", "Zoë", "Mehmet", "Ngozi", "Søren",
               "Ana María", "Θεόδωρος", "Priya", "Đặng")
ROUTE_NAMES = ("приём заказа", "Bestellung prüfen", "订单处理", "expédition ✈",
               "onboarding 🚀", "पंजीकरण", "申請の審査", "returns & refunds", "Ödeme akışı")
STEP_NAMES = ("проверка склада", "take payment", "Zahlung bestätigen", "打包",
              "envoi du colis", "☕ pause", "審査", "quality check ✔", "समीक्षा",
              "مراجعة الطلب", "sign-off by Łukasz", "archive")

# Routes this process has seen, shared by its participants: rid -> step names.
KNOWN_ROUTES: dict[str, list[str]] = {}
_participant_numbers = itertools.count(1)


@dataclass(frozen=True)
class Mix:
    """The behaviour mix and think times, read from the options."""

    think_min: float
    think_max: float
    weights: tuple[int, int, int]
    stop_chance: float
    wrong_move_chance: float
    own_route_chance: float
    text_route_chance: float
    max_route_steps: int
    routes_per_participant: int
    record_finished: str


@events.init_command_line_parser.add_listener
def add_options(parser) -> None:
    parser.add_argument("--think-min", type=float, default=0.5,
                        help="Minimum pause between a participant's actions, in seconds.")
    parser.add_argument("--think-max", type=float, default=2.0,
                        help="Maximum pause between a participant's actions, in seconds.")
    parser.add_argument("--walk-weight", type=int, default=10,
                        help="Relative weight of walking a session.")
    parser.add_argument("--browse-weight", type=int, default=3,
                        help="Relative weight of browsing the /info pages.")
    parser.add_argument("--route-weight", type=int, default=1,
                        help="Relative weight of storing (and deleting) routes.")
    parser.add_argument("--stop-chance", type=float, default=0.15,
                        help="Chance, 0 to 1, that a walk stops its session before the end.")
    parser.add_argument("--wrong-move-chance", type=float, default=0.1,
                        help="Chance, 0 to 1, that a walk joins twice or steps after the end.")
    parser.add_argument("--own-route-chance", type=float, default=0.5,
                        help="Chance, 0 to 1, that a walk uses the participant's own route.")
    parser.add_argument("--text-route-chance", type=float, default=0.7,
                        help="Share, 0 to 1, of routes stored from text; the rest from a "
                             "step count.")
    parser.add_argument("--max-route-steps", type=int, default=8,
                        help="Maximum steps in a stored route; keep it within DAMBA_MAXSTEPS.")
    parser.add_argument("--routes-per-participant", type=int, default=2,
                        help="Routes a participant keeps before it deletes its oldest.")
    parser.add_argument("--record-finished", default="", include_in_web_ui=False,
                        help="Append the id of each session seen finishing to this file.")


def read_mix(options) -> Mix:
    """Build the Mix from Locust's parsed options, or raise ValueError."""
    mix = Mix(
        think_min=options.think_min,
        think_max=options.think_max,
        weights=(options.walk_weight, options.browse_weight, options.route_weight),
        stop_chance=options.stop_chance,
        wrong_move_chance=options.wrong_move_chance,
        own_route_chance=options.own_route_chance,
        text_route_chance=options.text_route_chance,
        max_route_steps=options.max_route_steps,
        routes_per_participant=options.routes_per_participant,
        record_finished=options.record_finished,
    )
    if not 0 <= mix.think_min <= mix.think_max:
        raise ValueError(f"--think-min {mix.think_min} and --think-max {mix.think_max} "
                         f"must satisfy 0 <= min <= max.")
    if min(mix.weights) < 0 or sum(mix.weights) == 0:
        raise ValueError(f"The weights {mix.weights} must be 0 or more, and not all 0.")
    for name in ("stop_chance", "wrong_move_chance", "own_route_chance", "text_route_chance"):
        if not 0 <= getattr(mix, name) <= 1:
            raise ValueError(f"--{name.replace('_', '-')} must be between 0 and 1, "
                             f"got {getattr(mix, name)}.")
    if mix.max_route_steps < 1 or mix.routes_per_participant < 1:
        raise ValueError("--max-route-steps and --routes-per-participant must be at least 1.")
    return mix


MIX: Mix | None = None


@events.test_start.add_listener
def start_run(environment, **_kwargs) -> None:
    global MIX
    try:
        MIX = read_mix(environment.parsed_options)
    except ValueError as error:
        log.error("invalid option, stopping the run: %s", error)
        if environment.runner is not None:
            environment.runner.quit()
        return
    KNOWN_ROUTES.clear()


def record_finished(sid: str) -> None:
    if MIX.record_finished:
        with open(MIX.record_finished, "a", encoding="utf-8") as file:
            file.write(sid + "\n")


def check_reply(response, body: dict | None, expected_status: int,
                expected_code: str | None) -> str | None:
    """Return what is wrong with a reply, or None if it is as expected."""
    status = response.status_code
    if not status:
        # FastHttpSession turns a connection failure into a response with
        # status 0 and the exception in ``error``.
        return f"no response: {getattr(response, 'error', None)!r}"
    if body is None:
        return f"HTTP {status} with a body that is not a JSON object"
    got = f"HTTP {status} {body.get('code', '')}: {body.get('desc', '')}".strip()
    if status != expected_status:
        wanted = f"{expected_status} {expected_code}" if expected_code else expected_status
        return f"expected HTTP {wanted}, got {got}"
    if expected_code is None:
        return None if body.get("result") == "ok" else f"expected result ok, got {got}"
    if body.get("result") != "error" or body.get("code") != expected_code:
        return f"expected error {expected_code}, got {got}"
    if not body.get("desc"):
        return f"error {expected_code} came without a desc sentence"
    return None


def parse_json(response) -> dict | None:
    try:
        body = response.json()
    except (ValueError, TypeError):
        # TypeError: a response without a body, after a connection failure.
        return None
    return body if isinstance(body, dict) else None


def step_names(count: int) -> list[str]:
    """Pick ``count`` step names, numbering repeats past the list's length."""
    names = random.sample(STEP_NAMES, min(count, len(STEP_NAMES)))
    names += [f"{random.choice(STEP_NAMES)} {number}"
              for number in range(len(names) + 1, count + 1)]
    return names


def route_text(name: str, steps: list[str]) -> str:
    """Write a route in the route language, with a comment and mixed-case keywords."""
    lines = [f"# {name}, written by a load run", "", f"START {name}"]
    lines += [f"{random.choice(('STEP', 'Step', 'step'))} {step}" for step in steps]
    lines.append("STOP")
    return "\n".join(lines) + "\n"


class Participant(FastHttpUser):
    """A person who registers, stores routes, walks sessions and leaves.

    Method names stay clear of User's own (start, stop, run, wait), which
    Locust calls to drive the participant.
    """

    # Only a default: --host, or the host field of the web UI, wins.
    host = "http://127.0.0.1:8000"

    def wait_time(self) -> float:
        return random.uniform(MIX.think_min, MIX.think_max)

    def think(self) -> None:
        # gevent.sleep, not self.wait(): Locust may stop a participant during
        # self.wait() even with --stop-timeout, cutting a walk in half.
        gevent.sleep(self.wait_time())

    # ------------------------------------------------------------ requests

    def expect(self, method: str, path: str, name: str, status: int,
               code: str | None = None, check=None, **kwargs) -> dict | None:
        """Send a request; return its JSON body if it is the expected reply.

        ``check(body)`` may return a further problem. Any problem marks the
        request failed in Locust and returns None.
        """
        with self.client.request(method, API + path, name=name, catch_response=True,
                                 **kwargs) as response:
            body = parse_json(response)
            problem = check_reply(response, body, status, code)
            if problem is None and check is not None:
                problem = check(body)
            if problem is not None:
                response.failure(problem)
                return None
            response.success()
            return body

    def route_is_gone(self, rid: str) -> bool:
        """Ask /info/route whether a route was deleted; forget it if so."""
        with self.client.get(f"{API}/info/route/{rid}", name="/info/route/[rid]",
                             catch_response=True) as response:
            body = parse_json(response) or {}
            if response.status_code == 404 and body.get("code") == "unknown_route":
                response.success()
                KNOWN_ROUTES.pop(rid, None)
                return True
            if response.status_code == 200 and body.get("result") == "ok":
                response.success()
            else:
                response.failure(check_reply(response, body, 200, None))
            return False

    # ------------------------------------------------------------ lifecycle

    def on_start(self) -> None:
        self.key: str | None = None
        self.routes: list[str] = []  # rids this participant owns, oldest first
        self.name = (f"{random.choice(FIRST_NAMES)} {next(_participant_numbers)}-"
                     f"{secrets.token_hex(3)}")
        reply = self.expect(
            "POST", "/user/addme", "/user/addme", 201, json={"name": self.name},
            # The message leaves the body out: it contains the access key.
            check=lambda body: None if body.get("name") == self.name
            and KEY.match(str(body.get("uid", "")))
            else "the reply lacks the requested name or a valid uid",
        )
        if reply is None:
            log.error("participant %s could not register; is the server started with "
                      "`damba serve --profile load`?", self.name)
            raise StopUser()
        self.key = reply["uid"]
        self.add_route()

    def on_stop(self) -> None:
        if self.key is None:
            return
        self.expect("POST", f"/user/killme/uid/{self.key}", "/user/killme/uid/[key]", 200)
        for rid in self.routes:
            KNOWN_ROUTES.pop(rid, None)
        self.key = None

    @task
    def act(self) -> None:
        behaviour = random.choices((self.walk, self.browse, self.manage_routes),
                                   weights=MIX.weights)[0]
        behaviour()

    # ------------------------------------------------------------ routes

    def add_route(self) -> None:
        count = random.randint(1, MIX.max_route_steps)
        if random.random() < MIX.text_route_chance:
            route_name = random.choice(ROUTE_NAMES)
            steps = step_names(count)
            reply = self.expect(
                "POST", f"/addroute/uid/{self.key}", "/addroute/uid/[key]", 201,
                data=route_text(route_name, steps).encode("utf-8"),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                check=lambda body: self.check_route(body, route_name, steps),
            )
        else:
            steps = [f"step {number}" for number in range(1, count + 1)]
            reply = self.expect(
                "POST", f"/addroute/uid/{self.key}/steps/{count}",
                "/addroute/uid/[key]/steps/[n]", 201,
                check=lambda body: self.check_route(body, None, steps),
            )
        if reply is not None:
            self.routes.append(reply["rid"])
            KNOWN_ROUTES[reply["rid"]] = steps

    def check_route(self, body: dict, name: str | None, steps: list[str]) -> str | None:
        route = body.get("route") or {}
        if not ROUTE_ID.match(str(body.get("rid", ""))) or route.get("rid") != body["rid"]:
            return f"the reply has no valid rid: {body}"
        if name is not None and route.get("name") != name:
            return f"route name {route.get('name')!r}, expected {name!r}"
        if route.get("steps") != steps:
            return f"route steps {route.get('steps')!r}, expected {steps!r}"
        if route.get("owner") != self.name:
            return f"route owner {route.get('owner')!r}, expected {self.name!r}"
        return None

    def manage_routes(self) -> None:
        if len(self.routes) >= MIX.routes_per_participant:
            rid = self.routes.pop(0)
            KNOWN_ROUTES.pop(rid, None)
            self.expect("POST", f"/delroute/uid/{self.key}/route/{rid}",
                        "/delroute/uid/[key]/route/[rid]", 200,
                        check=lambda body: None if body.get("rid") == rid
                        else f"deleted {body.get('rid')!r}, expected {rid!r}")
        self.add_route()

    def pick_route(self) -> str | None:
        others = [rid for rid in KNOWN_ROUTES if rid not in self.routes]
        if self.routes and (not others or random.random() < MIX.own_route_chance):
            return random.choice(self.routes)
        return random.choice(others) if others else None

    # ------------------------------------------------------------ sessions

    def walk(self) -> None:
        rid = self.pick_route()
        if rid is None:
            self.add_route()
            return
        steps = KNOWN_ROUTES.get(rid)
        if steps is None:
            return
        sid = self.join_route(rid)
        if sid is None:
            return
        wrong_move = random.random() < MIX.wrong_move_chance
        if wrong_move and random.random() < 0.5:
            self.join_twice(rid)
            wrong_move = False

        stop_at = random.randint(0, len(steps)) if random.random() < MIX.stop_chance else None
        by_sid = random.random() < 0.5
        for at in range(len(steps) + 1):
            self.think()
            if at == stop_at:
                outcome = self.stop_session(rid, sid, by_sid)
                break
            outcome = self.step_session(rid, sid, steps, at, by_sid)
            if outcome != "running":
                break
        if outcome == "failed":
            self.abandon(sid)
            return
        if outcome in ("finished", "stopped"):
            if wrong_move:
                self.step_after_end(sid)
            if random.random() < 0.3:
                self.view_session(sid, outcome)

    def join_route(self, rid: str) -> str | None:
        own = rid in self.routes

        def check(body: dict) -> str | None:
            if not SESSION_ID.match(str(body.get("sid", ""))):
                return f"the reply has no valid sid: {body}"
            if body.get("rid") != rid or body.get("step") != 0 or body.get("status") != "running":
                return f"expected a running session at step 0 of {rid}, got {body}"
            return None

        path = f"/join/uid/{self.key}/route/{rid}"
        name = "/join/uid/[key]/route/[rid]"
        with self.client.post(API + path, name=name, catch_response=True) as response:
            body = parse_json(response)
            if (not own and response.status_code == 404
                    and (body or {}).get("code") == "unknown_route"):
                # Another participant deleted the route after this one listed it.
                response.success()
                KNOWN_ROUTES.pop(rid, None)
                return None
            problem = check_reply(response, body, 201, None) or check(body)
            if problem is not None:
                response.failure(problem)
                return None
            response.success()
        return body["sid"]

    def join_twice(self, rid: str) -> None:
        with self.client.post(f"{API}/join/uid/{self.key}/route/{rid}",
                              name="/join/uid/[key]/route/[rid] (twice)",
                              catch_response=True) as response:
            body = parse_json(response)
            if (rid not in self.routes and response.status_code == 404
                    and (body or {}).get("code") == "unknown_route"):
                # The owner deleted the route between the two joins.
                response.success()
                return
            problem = check_reply(response, body, 409, "session_active")
            if problem is None:
                response.success()
            else:
                response.failure(problem)

    def _move_path(self, action: str, rid: str, sid: str, by_sid: bool) -> tuple[str, str]:
        if by_sid:
            return (f"/{action}/uid/{self.key}/session/{sid}",
                    f"/{action}/uid/[key]/session/[sid]")
        return f"/{action}/uid/{self.key}/route/{rid}", f"/{action}/uid/[key]/route/[rid]"

    def _moved(self, response, rid: str, expected: dict) -> str:
        """Check a step or stop reply; return the session's status, or "failed"."""
        body = parse_json(response)
        code = (body or {}).get("code")
        if (rid not in self.routes and code in ("session_ended", "no_active_session")
                and self.route_is_gone(rid)):
            # The route's owner deleted it, or left, which stopped this session.
            response.success()
            return "gone"
        problem = check_reply(response, body, 200, None)
        if problem is None:
            got = {name: body.get(name) for name in expected}
            if got != expected:
                problem = f"expected {expected}, got {got}"
        if problem is not None:
            response.failure(problem)
            return "failed"
        response.success()
        return body["status"]

    def step_session(self, rid: str, sid: str, steps: list[str], at: int, by_sid: bool) -> str:
        if at < len(steps):
            expected = {"sid": sid, "step": at + 1, "name": steps[at], "status": "running"}
        else:
            expected = {"sid": sid, "step": END_STEP, "name": "STOP", "status": "finished"}
        path, name = self._move_path("step", rid, sid, by_sid)
        with self.client.post(API + path, name=name, catch_response=True) as response:
            outcome = self._moved(response, rid, expected)
        if outcome == "finished":
            record_finished(sid)
        return outcome

    def stop_session(self, rid: str, sid: str, by_sid: bool) -> str:
        expected = {"sid": sid, "step": END_STEP, "status": "stopped"}
        path, name = self._move_path("stop", rid, sid, by_sid)
        with self.client.post(API + path, name=name, catch_response=True) as response:
            return self._moved(response, rid, expected)

    def step_after_end(self, sid: str) -> None:
        self.expect("POST", f"/step/uid/{self.key}/session/{sid}",
                    "/step/uid/[key]/session/[sid] (after end)", 409, code="session_ended")

    def abandon(self, sid: str) -> None:
        """Stop a session a failed call left running, so the next join is not rejected."""
        with self.client.post(f"{API}/stop/uid/{self.key}/session/{sid}",
                              name="/stop/uid/[key]/session/[sid] (clean-up)",
                              catch_response=True) as response:
            body = parse_json(response) or {}
            if response.status_code == 200 or body.get("code") == "session_ended":
                response.success()
            else:
                response.failure(check_reply(response, body, 200, None))

    def view_session(self, sid: str, status: str) -> None:
        self.expect("GET", f"/info/session/{sid}", "/info/session/[sid]", 200,
                    check=lambda body: None if body.get("sid") == sid
                    and body.get("status") == status and body.get("trace")
                    else f"expected {status} session {sid} with a trace, got {body}")

    # ------------------------------------------------------------ browsing

    def browse(self) -> None:
        for page in random.sample((self.view_info, self.list_routes, self.view_route,
                                   self.view_self, self.list_users), 2):
            page()
            self.think()

    def view_info(self) -> None:
        self.expect("GET", "/info", "/info", 200,
                    check=lambda body: None if {"version", "limits", "counts"} <= body.keys()
                    else f"/info lacks version, limits or counts: {body}")

    def list_routes(self) -> None:
        reply = self.expect("GET", "/info/routes", "/info/routes", 200,
                            check=lambda body: None if isinstance(body.get("routes"), list)
                            else "the reply has no routes list")
        if reply is not None:
            KNOWN_ROUTES.clear()
            KNOWN_ROUTES.update({route["rid"]: route["steps"] for route in reply["routes"]})

    def view_route(self) -> None:
        rid = self.pick_route()
        if rid is not None:
            self.route_is_gone(rid)

    def view_self(self) -> None:
        self.expect("GET", f"/info/user/{self.key}", "/info/user/[key]", 200,
                    check=lambda body: None if (body.get("user") or {}).get("name") == self.name
                    else f"expected the record of {self.name!r}, got {body.get('user')}")

    def list_users(self) -> None:
        self.expect("GET", "/info/users", "/info/users", 200,
                    check=lambda body: None if isinstance(body.get("users"), list)
                    else "the reply has no users list")
