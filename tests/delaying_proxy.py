"""A TCP proxy in front of Redis that can hold back one reply, to lose it."""

from __future__ import annotations

import socket
import threading
import time


class DelayingProxy:
    """Forwards 127.0.0.1:<port> to a Redis; ``delay_next_reply`` stalls one reply.

    While a reply is held back the client times out, as it would if the
    network dropped the reply after Redis had already run the command.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._delay = 0.0
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def delay_next_reply(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    def _take_delay(self) -> float:
        with self._lock:
            delay, self._delay = self._delay, 0.0
            return delay

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, is_reply: bool) -> None:
        try:
            while data := source.recv(65536):
                if is_reply:
                    delay = self._take_delay()
                    if delay:
                        time.sleep(delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        self.listener.close()
