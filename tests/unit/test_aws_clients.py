"""chalicelib.aws: one client per service and process, however many threads ask."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from chalicelib import aws


def test_threads_asking_at_once_share_one_client(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def slow_create(service: str) -> Any:
        made.append(service)
        time.sleep(0.05)  # as slow as a real client, so the threads overlap
        return object()

    monkeypatch.setattr(aws, "_create", slow_create)
    aws.reset_clients()
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(aws.dynamodb())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == ["dynamodb"]
    assert len({id(client) for client in got}) == 1
    aws.reset_clients()


def test_reset_makes_the_next_call_create_a_new_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "_create", lambda service: object())
    aws.reset_clients()
    first = aws.events()
    assert aws.events() is first
    aws.reset_clients()
    assert aws.events() is not first
    aws.reset_clients()
