"""The runtime's embedded AWS: moto's server app on a loopback port, in a thread.

This is what ``moto.server.ThreadedMotoServer`` does, with two differences:

* the port is bound here, before the thread starts, so a port already in use is an error
  that says so (moto's thread would exit and leave ``start()`` waiting forever);
* the app is served by waitress, not werkzeug's development server. werkzeug's server
  answers every request with ``Connection: close`` and starts a thread for each
  connection, so every AWS call of the runtime paid a TCP connect and a thread start on
  both sides. waitress keeps HTTP/1.1 connections alive (boto3 reuses them) and runs
  requests on a fixed pool of threads.

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
# Requests served at once. DynamoDB calls run one at a time anyway (local.motoserver's
# lock); more threads only let SQS and EventBridge calls run beside them. Each SQS
# trigger's pollers hold a thread through their long polls (1 s each), so an app with
# several queue triggers waits for threads (64 were tried; see bench/results.md).
SERVER_THREADS = 8


class PortInUse(RuntimeError):
    """The embedded AWS cannot listen on the port it was given."""


class EmbeddedAws:
    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_AWS_PORT) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from waitress.server import create_server

        listener = _listen(host, port)
        app = DomainDispatcherApplication(create_backend_app)
        self._server: Any = create_server(
            app,
            sockets=[listener],
            threads=SERVER_THREADS,
            connection_limit=1000,
            channel_timeout=300,
            clear_untrusted_proxy_headers=False,
        )
        self._thread = threading.Thread(target=self._server.run, name="local-aws", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self._server.effective_host}:{self._server.effective_port}"

    def stop(self) -> None:
        """Stop accepting and let the running requests finish; the loop thread is a
        daemon (waitress's loop has no stop call), and ends with the process."""
        self._server.task_dispatcher.shutdown(timeout=5)
        self._server.close()


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
