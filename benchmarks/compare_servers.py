"""Compare the WSGI and the ASGI server under the same request mix.

Starts ``damba serve`` (gunicorn) and ``damba serve --asgi`` (uvicorn) as
two processes with the same worker count, on the same Redis, each under its
own key prefix. Then it drives one server at a time with the same mix of
requests from a fixed number of concurrent clients. It alternates between
the servers for several rounds, so that a drift of the machine hits both,
and prints throughput and latency percentiles side by side with their
ratio.

The load is bounded: each round stops after ``--duration`` seconds or
``--max-requests`` requests, whichever comes first, and every request goes
to 127.0.0.1. Without DAMBA_REDIS_URL the script starts an embedded Valkey
and stops it at the end; with it, the script deletes its prefixes after
the run.

    .venv/bin/python benchmarks/compare_servers.py --duration 20 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import aiohttp
import redis

from damba.embedded import EmbeddedValkey

KINDS = ("wsgi", "asgi")
SERVER_NAMES = {"wsgi": "WSGI (gunicorn)", "asgi": "ASGI (uvicorn)"}

# Seconds a server may take to accept its first connection, and to exit.
START_DEADLINE = 60.0
STOP_DEADLINE = 30.0


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    kind: str
    port: int
    prefix: str
    process: subprocess.Popen

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"


def start_server(kind: str, redis_url: str, workers: int, log_folder: Path) -> Server:
    """Start ``damba serve`` of ``kind`` under its own prefix and wait for its port."""
    port = free_port()
    prefix = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    # The mix registers a participant and a route per flow and removes them
    # at its end, but flows cut off at the end of a round leave theirs. The
    # log level stays at its default, so each server writes its usual lines.
    env.update(
        DAMBA_REDIS_URL=redis_url,
        DAMBA_KEY_PREFIX=prefix,
        DAMBA_MAXUSERS="1000000",
        DAMBA_MAXROUTES="1000000",
    )
    command = [
        sys.executable,
        "-m",
        "damba",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if kind == "asgi":
        command.append("--asgi")

    log_path = log_folder / f"{kind}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=log, env=env, start_new_session=True
        )
    server = Server(kind, port, prefix, process)

    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{kind} server exited:\n{log_path.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"{kind} server did not start within {START_DEADLINE} s")


def stop_server(server: Server) -> None:
    """Stop the server by its PID: SIGTERM, then SIGKILL if it does not exit."""
    if server.process.poll() is not None:
        return
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    batch = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    while batch:
        client.delete(*batch[:1000])
        batch = batch[1000:]


# ---------------------------------------------------------------- load


@dataclass
class Sample:
    """The requests of one server in one or more rounds."""

    latencies: list[float] = field(default_factory=list)
    # Responses whose status was not the expected one, by status and error code.
    unexpected: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    # CPU seconds the load client itself used, to tell whether it, rather
    # than the server, limited the throughput.
    client_cpu_seconds: float = 0.0

    def add(self, other: Sample) -> None:
        self.latencies += other.latencies
        self.unexpected.update(other.unexpected)
        self.seconds += other.seconds
        self.client_cpu_seconds += other.client_cpu_seconds


class BudgetSpent(Exception):
    """Raised by a client whose round has run out of time or requests."""


class Budget:
    """Stops the clients of a round at its deadline or its request count."""

    def __init__(self, seconds: float, max_requests: int) -> None:
        self.deadline = time.monotonic() + seconds
        self.left = max_requests

    def take(self) -> bool:
        if self.left <= 0 or time.monotonic() >= self.deadline:
            return False
        self.left -= 1
        return True


class Client:
    """One simulated participant, running the request mix in a loop."""

    def __init__(
        self, session: aiohttp.ClientSession, base: str, budget: Budget, sample: Sample
    ) -> None:
        self.session = session
        self.base = base
        self.budget = budget
        self.sample = sample

    async def send(self, method: str, path: str, expected: int) -> dict | None:
        """Send one request; return its JSON, or None if its status was unexpected.

        Raises BudgetSpent once the round's time or request count has run out.
        """
        if not self.budget.take():
            raise BudgetSpent
        started = time.perf_counter()
        async with self.session.request(method, self.base + path) as response:
            body = await response.json()
        self.sample.latencies.append(time.perf_counter() - started)
        if response.status != expected:
            self.sample.unexpected[(response.status, body.get("code", "-"))] += 1
            return None
        return body

    async def flow(self) -> None:
        """Run the mix of 8 writes and 4 reads once, or until a request fails."""
        user = await self.send("POST", "/user/addme", 201)
        if user is None:
            return
        key = user["uid"]
        route = await self.send("POST", f"/addroute/uid/{key}/steps/4", 201)
        if route is None:
            return
        rid = route["rid"]
        session = await self.send("POST", f"/join/uid/{key}/route/{rid}", 201)
        if session is None:
            return
        sid = session["sid"]
        for _ in range(5):
            if await self.send("POST", f"/step/uid/{key}/session/{sid}", 200) is None:
                return
        for path in (f"/info/session/{sid}", f"/info/route/{rid}", "/info"):
            if await self.send("GET", path, 200) is None:
                return
        await self.send("POST", f"/user/killme/uid/{key}", 200)

    async def run(self) -> None:
        """Run flows until the budget is spent, starting over after a failed one."""
        try:
            while True:
                await self.flow()
        except BudgetSpent:
            pass


async def drive(
    server: Server, clients: int, seconds: float, max_requests: int
) -> Sample:
    """Run ``clients`` concurrent clients against ``server`` within the budget."""
    sample = Sample()
    budget = Budget(seconds, max_requests)
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        cpu_started = time.process_time()
        await asyncio.gather(
            *(
                Client(session, server.base_url, budget, sample).run()
                for _ in range(clients)
            )
        )
        sample.seconds = time.perf_counter() - started
        sample.client_cpu_seconds = time.process_time() - cpu_started
    return sample


# ---------------------------------------------------------------- report


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]


def summarise(sample: Sample) -> dict[str, float]:
    latencies = sorted(sample.latencies)
    return {
        "requests": len(latencies),
        "throughput (req/s)": len(latencies) / sample.seconds,
        "latency mean (ms)": statistics.fmean(latencies) * 1000,
        "latency p50 (ms)": percentile(latencies, 0.50) * 1000,
        "latency p90 (ms)": percentile(latencies, 0.90) * 1000,
        "latency p99 (ms)": percentile(latencies, 0.99) * 1000,
        "latency max (ms)": latencies[-1] * 1000,
        "unexpected statuses": sum(sample.unexpected.values()),
        "load client CPU (%)": 100 * sample.client_cpu_seconds / sample.seconds,
    }


def print_table(results: dict[str, Sample]) -> None:
    summaries = {kind: summarise(results[kind]) for kind in KINDS}
    header = (
        f"{'':24}{SERVER_NAMES['wsgi']:>18}{SERVER_NAMES['asgi']:>18}{'ASGI/WSGI':>12}"
    )
    print(header)
    print("-" * len(header))
    for name in summaries["wsgi"]:
        wsgi, asgi = summaries["wsgi"][name], summaries["asgi"][name]
        ratio = f"{asgi / wsgi:.2f}" if wsgi else "-"
        number = (
            "{:>18,.0f}"
            if name in ("requests", "unexpected statuses")
            else "{:>18,.1f}"
        )
        print(f"{name:24}{number.format(wsgi)}{number.format(asgi)}{ratio:>12}")


def print_problems(kind: str, log_path: Path, max_lines: int = 5) -> None:
    """Print how many warnings and errors the server logged, and the first few."""
    problems = [
        line
        for line in log_path.read_text(errors="replace").splitlines()
        if " WARNING " in line or " ERROR " in line or "Traceback" in line
    ]
    if problems:
        print(
            f"{SERVER_NAMES[kind]} logged {len(problems)} warnings and errors, first:"
        )
        for line in problems[:max_lines]:
            print("  " + line)


def describe_machine(client: redis.Redis) -> list[str]:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    packages = ", ".join(
        f"{name} {version(name)}"
        for name in ("falcon", "gunicorn", "uvicorn", "redis", "aiohttp")
    )
    loops = [name for name in ("uvloop", "httptools") if _installed(name)]
    server = client.info("server")
    redis_name = server.get("server_name", "redis")
    redis_version = server.get(f"{redis_name}_version", server["redis_version"])
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}; "
        f"load average before the first round {load}",
        f"system: {platform.platform()}; Python {platform.python_version()}",
        f"packages: {packages}",
        f"uvicorn extras installed: {', '.join(loops) or 'none'}",
        f"Redis: {redis_name} {redis_version}",
    ]


def _installed(name: str) -> bool:
    try:
        version(name)
    except Exception:
        return False
    return True


# ---------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes of each server (default 2)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=32,
        help="concurrent clients, each with one keep-alive connection (default 32)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds of load on each server in each round (default 10)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="rounds, each loading both servers in turn (default 6)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds of unmeasured load before the first round (default 3)",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=200_000,
        help="maximum requests to one server in one round (default 200000)",
    )
    return parser.parse_args()


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(1)


def main() -> None:
    args = parse_args()
    # Stopping the script with SIGTERM still stops both servers and deletes
    # their prefixes, in the finally clause below.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack, tempfile.TemporaryDirectory() as logs:
        redis_url = os.environ.get("DAMBA_REDIS_URL")
        if not redis_url:
            redis_url = stack.enter_context(EmbeddedValkey())
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        servers = {}
        try:
            for kind in KINDS:
                servers[kind] = start_server(kind, redis_url, args.workers, Path(logs))
            print("\n".join(describe_machine(client)))
            print(
                f"load: {args.clients} clients, {args.workers} workers per server, "
                f"{args.rounds} rounds of {args.duration:g} s per server after "
                f"{args.warmup:g} s of warm-up each; mix per flow: addme, addroute, "
                f"join, 5 steps, 3 reads, killme"
            )
            for kind in KINDS:
                asyncio.run(
                    drive(servers[kind], args.clients, args.warmup, args.max_requests)
                )
            results = {kind: Sample() for kind in KINDS}
            ratios = []
            for round_number in range(1, args.rounds + 1):
                rates = {}
                for kind in KINDS:
                    sample = asyncio.run(
                        drive(
                            servers[kind],
                            args.clients,
                            args.duration,
                            args.max_requests,
                        )
                    )
                    results[kind].add(sample)
                    rates[kind] = len(sample.latencies) / sample.seconds
                ratios.append(rates["asgi"] / rates["wsgi"])
                print(
                    f"round {round_number}: WSGI {rates['wsgi']:,.0f} req/s, "
                    f"ASGI {rates['asgi']:,.0f} req/s, ratio {ratios[-1]:.2f}",
                    flush=True,
                )
            print()
            print_table(results)
            # The median of the per-round ratios resists a load from outside
            # the benchmark that lasts only a round or two.
            print(
                f"\nthroughput ratio ASGI/WSGI per round: median "
                f"{statistics.median(ratios):.2f}, "
                f"range {min(ratios):.2f} to {max(ratios):.2f}"
            )
            for kind in KINDS:
                for (status, code), count in sorted(results[kind].unexpected.items()):
                    print(f"{SERVER_NAMES[kind]}: {count} unexpected {status} {code}")
        finally:
            for server in servers.values():
                stop_server(server)
                delete_prefix(client, server.prefix)
            client.close()
            for kind in servers:
                print_problems(kind, Path(logs) / f"{kind}.log")


if __name__ == "__main__":
    main()
