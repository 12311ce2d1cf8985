"""A container health check: ``python -m damba.probe [PATH]``.

It sends GET PATH (``/readyz`` by default) to a server on this host and
exits 0 on a 200 reply, or 1 on anything else, after printing the URL with
the status or the error. docker-compose runs it as a service's health check,
so the image needs no curl. The port is ``--port``, else DAMBA_PORT, else 8000.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m damba.probe",
        description="Exit 0 if GET PATH on this host returns 200, else 1.",
    )
    parser.add_argument(
        "path", nargs="?", default="/readyz", help="Path to request (default: /readyz)."
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="TCP port (default: DAMBA_PORT, else 8000).",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="Address to connect to (default: 127.0.0.1).",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        help="Seconds to wait for the reply (default: 3).",
    )
    return parser.parse_args(argv)


def probe(url: str, timeout: float) -> tuple[bool, str]:
    """Send GET ``url`` and return whether the status was 200, with a line to print."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status == 200, f"{url}: {reply.status}"
    except urllib.error.HTTPError as error:
        body = error.read(300).decode("utf-8", "replace")
        return False, f"{url}: {error.code} {body}"
    except (urllib.error.URLError, OSError) as error:
        return False, f"{url}: no reply ({error})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    port = (
        args.port
        if args.port is not None
        else int(os.environ.get("DAMBA_PORT") or 8000)
    )
    healthy, line = probe(f"http://{args.host}:{port}{args.path}", args.timeout)
    print(line, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
