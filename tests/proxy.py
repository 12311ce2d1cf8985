"""A TCP proxy in front of the test Redis that can lose replies on purpose.

It forwards bytes both ways. Once armed with a marker, it forwards the next
command that contains the marker to Redis, so Redis runs it. Then it either
closes the client's connection instead of passing the reply back, or keeps
the connection open and discards the reply, so the client's read times out.
Either way the client sees what a network failure after sending looks like.
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit


class ReplyDroppingProxy:
    """Forward loopback connections to one Redis, dropping chosen replies."""

    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.database = parts.path
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._marker: bytes | None = None
        self._drops_left = 0
        self._close = True
        self.dropped = 0
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self.database}"

    def drop_replies(self, marker: bytes, count: int, close: bool = True) -> None:
        """Drop the replies to the next ``count`` commands that contain ``marker``.

        With ``close`` the client's connection closes in place of the reply.
        Without it the proxy discards that reply and every later one on the
        connection, so the client waits until its socket timeout.
        """
        with self._lock:
            self._marker = marker
            self._drops_left = count
            self._close = close

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self._sockets += [client, upstream]
            # Set once a reply on this connection is to be lost.
            doomed = threading.Event()
            threading.Thread(
                target=self._forward_commands,
                args=(client, upstream, doomed),
                daemon=True,
            ).start()
            threading.Thread(
                target=self._forward_replies,
                args=(upstream, client, doomed),
                daemon=True,
            ).start()

    def _claim_drop(self, chunk: bytes) -> bool:
        with self._lock:
            if (
                self._marker is None
                or self._drops_left == 0
                or self._marker not in chunk
            ):
                return False
            self._drops_left -= 1
            self.dropped += 1
            return True

    def _forward_commands(self, client, upstream, doomed: threading.Event) -> None:
        while chunk := _receive(client):
            # Mark the connection before Redis can reply, so the reply
            # thread never passes this command's reply on.
            if self._claim_drop(chunk):
                doomed.set()
            try:
                upstream.sendall(chunk)
            except OSError:
                break
        _close(upstream)

    def _forward_replies(self, upstream, client, doomed: threading.Event) -> None:
        while chunk := _receive(upstream):
            if doomed.is_set():
                if self._close:
                    break
                continue
            try:
                client.sendall(chunk)
            except OSError:
                break
        _close(client)
        _close(upstream)


def _receive(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
