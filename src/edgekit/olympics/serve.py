"""Serve the leaderboard on localhost while results come in.

    serve(lambda: leaderboard.build(store, tracks))           # blocks; Ctrl-C stops it
    url, stop = start_in_thread(build, port=0)                 # for tests: runs in the background

    GET /            the page (edgekit.olympics.page.render), rebuilt on every request
    GET /board.json  the leaderboard dict, with an ETag that changes only when the results change

The page polls /board.json every refresh_s seconds and reloads itself when the ETag differs from the
one it was rendered with. build() is called on every request, so the page is never staler than one
poll; it reads a small SQLite file, which is cheap next to a browser's poll interval.

Only 127.0.0.1 is bound by default: the board shows every team's results, so putting it on the
network (host="0.0.0.0") is a choice the caller makes explicitly.
"""
from __future__ import annotations

import json
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from . import page

__all__ = ["serve", "start_in_thread", "make_server"]


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self):  # noqa: N802 (the name http.server asks for)
        path = self.path.split("?", 1)[0]
        if path not in ("/", "/index.html", "/board.json"):
            self._send(404, "text/plain; charset=utf-8", b"not found\n")
            return
        try:
            board = self.server.build()
        except Exception as exc:  # a failing build must not take the server down: report it and go on
            traceback.print_exc(file=sys.stderr)
            message = f"{type(exc).__name__}: {exc}"
            if path == "/board.json":
                body = json.dumps({"error": message}).encode()
                self._send(500, "application/json", body)
            else:
                html = page.render_error(message, refresh_s=self.server.refresh_s)
                self._send(500, "text/html; charset=utf-8", html.encode(), csp=page.content_security_policy(True))
            return
        if path == "/board.json":
            body = json.dumps(board, indent=1, default=str).encode()
            self._send(200, "application/json", body, etag=page.board_hash(board))
        else:
            html = page.render(board, refresh_s=self.server.refresh_s)
            self._send(200, "text/html; charset=utf-8", html.encode(), csp=page.content_security_policy(True))

    def _send(self, code: int, ctype: str, body: bytes, etag: str | None = None, csp: str | None = None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        # Always fresh: the whole point is to show results as they arrive.
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        if etag:
            self.send_header("ETag", f'"{etag}"')
        if csp:
            self.send_header("Content-Security-Policy", csp)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (http.server's own signature)
        # A browser polls every couple of seconds; one log line per poll would drown the terminal.
        if self.server.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    # Request threads are daemons, so Ctrl-C does not wait for a browser's open connection.
    daemon_threads = True

    def __init__(self, address, build: Callable[[], dict], refresh_s: float, verbose: bool):
        self.build, self.refresh_s, self.verbose = build, refresh_s, verbose
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


def make_server(build: Callable[[], dict], host: str = "127.0.0.1", port: int = 8765,
                refresh_s: float = 2.0, verbose: bool = False) -> _Server:
    """The bound (not yet running) server; port 0 lets the system pick a free port (see .url)."""
    return _Server((host, port), build, refresh_s, verbose)


def serve(build: Callable[[], dict], host: str = "127.0.0.1", port: int = 8765,
          refresh_s: float = 2.0, verbose: bool = False) -> str:
    """Serve the leaderboard until Ctrl-C; prints the URL first and returns it when stopped."""
    server = make_server(build, host, port, refresh_s, verbose)
    url = server.url
    try:  # a Ctrl-C the moment the URL is out is a clean stop too
        print(f"Leaderboard at {url} (refreshes every {refresh_s:g} s; Ctrl-C stops)", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(f"note: bound to {host}, so other machines on the network can see the leaderboard", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()
    return url


def start_in_thread(build: Callable[[], dict], host: str = "127.0.0.1", port: int = 0,
                    refresh_s: float = 2.0) -> tuple[str, Callable[[], None]]:
    """Run the server in a background thread; returns (url, stop). stop() may be called twice."""
    server = make_server(build, host, port, refresh_s)
    thread = threading.Thread(target=server.serve_forever, name="olympics-serve", daemon=True)
    thread.start()
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        server.shutdown()      # ends serve_forever, waiting for its loop to notice
        server.server_close()  # frees the port
        thread.join(timeout=5)

    return server.url, stop
