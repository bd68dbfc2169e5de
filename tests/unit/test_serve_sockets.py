"""Each spawned worker listens on a socket of its own (``SO_REUSEPORT``), so the kernel spreads connections across
workers instead of one worker accepting a whole burst from a shared socket."""

from __future__ import annotations

import select
import socket

import pytest
from hypercorn.config import Config

from entrypoints.serve import own_sockets

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="the platform has no SO_REUSEPORT")


def _config(workers: int) -> Config:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.workers = workers
    return config


def test_two_workers_sockets_share_the_address_and_both_get_connections() -> None:
    shared = _config(2).create_sockets()
    parent = shared.insecure_sockets[0]
    workers = [own_sockets(shared).insecure_sockets[0] for _ in range(2)]
    clients: list[socket.socket] = []
    try:
        assert all(sock is not parent for sock in workers)
        assert {sock.getsockname() for sock in workers} == {parent.getsockname()}
        for sock in workers:
            sock.listen(128)
        for _ in range(40):
            clients.append(socket.create_connection(parent.getsockname()[:2], timeout=2))
        accepted = [0, 0]
        while sum(accepted) < len(clients):
            ready, _, _ = select.select(workers, [], [], 2)
            assert ready, f"only {sum(accepted)} of {len(clients)} connections were accepted"
            for sock in ready:
                connection, _ = sock.accept()
                connection.close()
                accepted[workers.index(sock)] += 1
        # 40 connections hashed over two sockets: all on one has odds of 2 in 2**40.
        assert min(accepted) > 0, accepted
    finally:
        for sock in [*clients, *workers, parent]:
            sock.close()


def test_a_parent_socket_without_reuseport_stays_shared() -> None:
    shared = _config(1).create_sockets()
    try:
        assert own_sockets(shared).insecure_sockets[0] is shared.insecure_sockets[0]
    finally:
        shared.insecure_sockets[0].close()
