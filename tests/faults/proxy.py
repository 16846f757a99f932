"""A TCP proxy on loopback that a fault test controls: the web server's database or broker
connection goes through it, so the test can cut it without touching the shared server."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`.

    `cut()` drops every open connection and refuses new ones (accepted, then closed at once)
    until `restore()`. `stall()` answers nothing on any connection until `release()`.
    `hold_on(pattern)` freezes the first connection whose client sends
    `pattern`: that chunk and everything after it stay unforwarded until `release()`, which
    closes the connection (the server sees its client vanish).
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs: set[tuple[socket.socket, socket.socket]] = set()
        self.refusing = False
        self.stalled = False
        self.pattern: bytes | None = None
        self.held = threading.Event()
        self.released = threading.Event()
        self.accepted = 0
        self.refused = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    # --- what a test calls --------------------------------------------------------------

    def cut(self) -> None:
        with self.lock:
            self.refusing = True
            pairs = list(self.pairs)
        for pair in pairs:
            self._close(pair)

    def restore(self) -> None:
        with self.lock:
            self.refusing = False

    def hold_on(self, pattern: bytes) -> None:
        self.held.clear()
        self.released.clear()
        self.pattern = pattern

    def stall(self) -> None:
        """A frozen server: connections are accepted, nothing sent on any is ever answered
        (each is dropped at `release()`)."""
        self.released.clear()
        self.stalled = True

    def release(self) -> None:
        self.stalled = False
        self.pattern = None
        self.released.set()

    def close(self) -> None:
        self.closed = True
        self.release()
        self.cut()
        self.listener.close()

    # --- the forwarding -----------------------------------------------------------------

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                refusing = self.refusing
            if refusing:
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            with self.lock:
                self.pairs.add(pair)
                self.accepted += 1
            threading.Thread(target=self._pump, args=(client, upstream, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, pair), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, pair) -> None:
        from_client = source is pair[0]
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                break
            if not data:
                break
            pattern = self.pattern
            held = pattern is not None and pattern in data and not self.held.is_set()
            if from_client and (held or self.stalled):
                self.held.set()
                self.released.wait()
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        self._close(pair)

    def _close(self, pair) -> None:
        with self.lock:
            self.pairs.discard(pair)
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
