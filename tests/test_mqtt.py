"""sortcore.adapters.mqtt and sortcore.store.outbox against a real mosquitto (no mocks)."""

import os
import subprocess

import pytest

from sortcore.core.errors import ConfigError, MqttError
from sortcore.adapters.mqtt import Connection, ConnectOptions, Message, connect_publisher
from sortcore.adapters.mqtt_config import BrokerUrl, parse_url, redact
from sortcore.store.outbox import OutboxPump
from sortcore.store.database import Store
from tests.mqtt_util import Collector

pytestmark = pytest.mark.compat

DEPLOY = os.path.join(os.path.dirname(__file__), os.pardir, "deploy", "mosquitto")


def test_parse_url():
    assert parse_url("mqtt://127.0.0.1:1884") == BrokerUrl("127.0.0.1", 1884, False)
    assert parse_url("mqtts://broker.local") == BrokerUrl("broker.local", 8883, True)
    assert parse_url("mqtt://sorter@h:1").username == "sorter"
    with pytest.raises(ConfigError) as refused:  # it would show in ps and /proc/PID/environ
        parse_url("mqtts://sorter:s%40cret@h:1")
    assert "password file" in str(refused.value) and "cret" not in str(refused.value)
    assert redact("mqtt://u:pw@h:1") == "mqtt://u:***@h:1"
    for bad in ("http://h", "mqtt://", "mqtt://h:99999", "mqtt://h/topic", "h:1883"):
        with pytest.raises(ConfigError):
            parse_url(bad)


def test_options_are_checked_and_hide_the_password():
    assert "hunter2" not in repr(ConnectOptions(username="u", password="hunter2"))
    with pytest.raises(ConfigError):
        ConnectOptions(clean_session=False)  # a persistent session needs a client id
    with pytest.raises(ConfigError):
        ConnectOptions(tls_cert="c.pem")
    with pytest.raises(ConfigError):
        Connection("mqtt://h", ConnectOptions(tls_ca="ca.pem"))


def test_publish_blocks_until_acked_and_arrives(mosquitto):
    with Collector(mosquitto, ["t/#"]) as seen:
        pub = connect_publisher(mosquitto.url)
        try:
            for i in range(50):
                pub.publish("t/x", "%d" % i)
        finally:
            pub.close()
        assert seen.wait(50) == [b"%d" % i for i in range(50)]


def test_publish_while_broker_down_raises_and_recovers(mosquitto):
    pub = connect_publisher(mosquitto.url, reconnect_max=0.5)
    try:
        mosquitto.stop()
        with pytest.raises(MqttError):
            pub.publish("t", "lost?", timeout=2)
        mosquitto.start()
        assert pub.wait_connected(10)
        with Collector(mosquitto, ["t"]) as seen:
            pub.publish("t", "back")
            assert b"back" in seen.wait(1)
    finally:
        pub.close()


def test_no_broker_is_a_clear_error():
    from sortcore.devtools.broker import free_port

    with pytest.raises(MqttError) as err:
        connect_publisher("mqtt://127.0.0.1:%d" % free_port(), timeout=3)
    assert "refused" in err.value.reason


def test_drain_publishes_in_order_and_stops_at_the_first_failure(mosquitto, tmp_path):
    store = Store(str(tmp_path / "s.db"))
    session = store.new_session("sighting", {})
    store.commit(session, outbox=[(i, "sockpairs", '{"n":%d}' % i) for i in range(1, 8)])

    class FailingAfter:
        def __init__(self, inner, n):
            self.inner, self.n = inner, n

        def publish(self, *args, **kwargs):
            if self.n == 0:
                raise MqttError("broker gone")
            self.n -= 1
            self.inner.publish(*args, **kwargs)

    with Collector(mosquitto, ["sockpairs"]) as seen:
        pub = connect_publisher(mosquitto.url)
        try:
            assert OutboxPump(store).pump(FailingAfter(pub, 3)) == 3
            assert [r["sighting"] for r in store.pending()] == [4, 5, 6, 7] and store.pending_count() == 4
            assert OutboxPump(store, limit=2).pump(pub) == 4  # rounds of 2, in flight together
            assert store.pending() == []
        finally:
            pub.close()
        assert seen.wait_json(7) == [{"n": i} for i in range(1, 8)]
    store.close()


# --- TLS, passwords, ACL ------------------------------------------------------

def make_tls(tmp_path):
    """A throw-away CA and a server certificate for 127.0.0.1."""
    d = tmp_path / "tls"
    d.mkdir()

    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=str(d), check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=sortcore test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    os.chmod(str(d / "server.key"), 0o644)
    return d


USERS = {"sortcore": "svc-pw", "camera": "cam-pw", "operator": "op-pw", "reader": "rd-pw"}


def secure_broker(broker_factory, tmp_path):
    """mosquitto with TLS, a password file and the deploy ACL."""
    tls = make_tls(tmp_path)
    passwd = tmp_path / "passwd"
    passwd.write_text("")
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True)
    os.chmod(str(passwd), 0o600)
    acl = os.path.abspath(os.path.join(DEPLOY, "acl"))
    broker = broker_factory(extra=[
        "cafile %s" % (tls / "ca.crt"), "certfile %s" % (tls / "server.crt"),
        "keyfile %s" % (tls / "server.key"), "allow_anonymous false",
        "password_file %s" % passwd, "acl_file %s" % acl,
    ], tls=True, name="secure")
    broker.start()
    broker.ca = str(tls / "ca.crt")
    return broker


def test_tls_and_password(broker_factory, tmp_path):
    broker = secure_broker(broker_factory, tmp_path)
    with Collector(broker, ["sockpairs/#"], username="reader", password="rd-pw", tls_ca=broker.ca) as seen:
        pub = connect_publisher(broker.url, username="sortcore", password="svc-pw", tls_ca=broker.ca)
        try:
            pub.publish("sockpairs", "{}")
        finally:
            pub.close()
        assert seen.wait(1) == [b"{}"]

    with pytest.raises(MqttError) as err:
        connect_publisher(broker.url, username="camera", password="wrong", tls_ca=broker.ca, timeout=5)
    assert "refused" in err.value.reason and "wrong" not in err.value.reason
    with pytest.raises(MqttError) as err:  # a CA that did not sign the broker's certificate
        connect_publisher(broker.url, username="camera", password="cam-pw", timeout=5)
    assert "TLS" in err.value.reason


def test_connected_means_subscribed(mosquitto):
    """A peer publishing right after wait_connected() is never ahead of our SUBSCRIBE."""
    publisher = connect_publisher(mosquitto.url)
    try:
        for attempt in range(10):
            conn = Connection(mosquitto.url, ConnectOptions(subscriptions=(("race/%d" % attempt, 1),))).start()
            try:
                assert conn.wait_connected()
                publisher.publish("race/%d" % attempt, b"x", qos=1)
                event = conn.events.get(timeout=5)
                while not isinstance(event, Message):  # skip the Connected event
                    event = conn.events.get(timeout=5)
                assert event.topic == "race/%d" % attempt
            finally:
                conn.close()
    finally:
        publisher.close()


def test_plain_mqtt_to_a_tls_port_says_so(broker_factory, tmp_path):
    broker = secure_broker(broker_factory, tmp_path)
    plain = "mqtt://%s:%d" % (broker.host, broker.port)
    with pytest.raises(MqttError) as refused:
        connect_publisher(plain, timeout=5.0, username="sortcore", password="svc-pw")
    assert "mqtts://" in refused.value.reason  # one line that points at the fix
