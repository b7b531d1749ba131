"""The runtime's embedded AWS: moto's server app on a loopback port, in a thread.

This is what ``moto.server.ThreadedMotoServer`` does, except that the port is bound here,
before the thread starts, so a port already in use is an error that says so (moto's
thread would exit and leave ``start()`` waiting forever).

Example::

    aws = EmbeddedAws("127.0.0.1", DEFAULT_AWS_PORT)   # 0 = any free port
    aws.url     # "http://127.0.0.1:8002"
    aws.stop()
"""

from __future__ import annotations

import socket
import threading
from typing import Any

# The port `python -m local run` serves AWS on by default; the `local` stage of
# .chalice/config.json points `chalice local` at it (AWS_ENDPOINT_URL).
DEFAULT_AWS_PORT = 8002


class PortInUse(RuntimeError):
    """The embedded AWS cannot listen on the port it was given."""


class EmbeddedAws:
    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_AWS_PORT) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        listener = _listen(host, port)
        try:
            app = DomainDispatcherApplication(create_backend_app)
            # werkzeug serves on a duplicate of the descriptor; ours is closed below.
            self._server: Any = make_server(host, port, app, threaded=True, fd=listener.fileno())
        finally:
            listener.close()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-aws", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _listen(host: str, port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As http.server does: a port left in TIME_WAIT by a runtime that just stopped is free.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(128)
    except OSError as err:
        listener.close()
        raise PortInUse(
            f"the embedded AWS cannot listen on {host}:{port} ({err.strerror}); is another "
            "`make run` up? Stop it, or pick another port with --aws-port (0 = any free port)"
        ) from None
    return listener
