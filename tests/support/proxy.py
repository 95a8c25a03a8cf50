"""A TCP proxy the test controls: cut it to make a service unreachable, restore it to bring it back."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``. ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int], port: int = 0) -> None:
        self.target = target
        self._listener = self._listen(port)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._cut = False
        self._accepting = threading.Thread(target=self._accept_loop, daemon=True, name="proxy-accept")
        self._accepting.start()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        return listener

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Close the listener and every proxied connection: the service is now unreachable."""
        with self._lock:
            self._cut = True
            with contextlib.suppress(OSError):
                self._listener.close()
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()
        self._accepting.join(timeout=5)

    def restore(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            self._listener = self._listen(self.port)
            self._cut = False
        self._accepting = threading.Thread(target=self._accept_loop, daemon=True, name="proxy-accept")
        self._accepting.start()

    def close(self) -> None:
        self.cut()

    def _accept_loop(self) -> None:
        listener = self._listener
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._cut:
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in selector.select(timeout=1.0):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
                with self._lock:
                    self._sockets.discard(sock)
