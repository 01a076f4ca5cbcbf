"""Outages staged for one test: the broker's Redis going away."""

from __future__ import annotations

from contextlib import contextmanager

import redis

from tests.support import free_port


@contextmanager
def redis_unreachable(broker):
    """Redis goes away for the broker (as in an outage): its client points at a port nobody listens on."""
    pool = broker.client.connection_pool
    broker.client.connection_pool = redis.ConnectionPool(host="127.0.0.1", port=free_port(), socket_timeout=1)
    try:
        yield
    finally:
        broker.client.connection_pool = pool
