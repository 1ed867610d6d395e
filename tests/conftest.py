"""Shared fixtures: a real mosquitto on a free loopback port (never a mock)."""

import pytest

from tests.mqtt_util import Broker


@pytest.fixture
def mosquitto(tmp_path):
    """A started mosquitto: ``.host .port .url .stop() .start() .kill()``."""
    broker = Broker(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture
def broker_factory(tmp_path):
    """Make brokers with extra config (TLS, passwords, ACL); all stopped at the end."""
    made = []

    def make(extra=(), tls=False, name="broker"):
        broker = Broker(tmp_path / name, extra=extra, tls=tls)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()
