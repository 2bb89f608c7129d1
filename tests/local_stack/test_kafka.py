"""The Kafka broker launcher, checked against a real broker with aiokafka clients.

The first run downloads the broker's jars from Maven Central into .cache/kafka (Java 17 and Maven
must be installed); later runs reuse them. Set LOCAL_KAFKA_CHECK_VERSION=4.1.1 to also run a round
trip on another Kafka version.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from local_stack.kafka import KafkaBroker, KafkaBrokerSettings
from local_stack.process import LOOPBACK, LocalStackError

pytestmark = pytest.mark.integration

CONSUME_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One broker on free ports for this module. Tests that stop or kill it start it again."""
    data_dir = tmp_path_factory.mktemp("kafka") / "data"
    kafka = KafkaBroker(KafkaBrokerSettings(port=0, controller_port=0, data_dir=data_dir))
    kafka.start()
    yield kafka
    kafka.stop()


def new_topic() -> str:
    return f"test-kafka-{uuid.uuid4().hex}"


async def produce(bootstrap_servers: str, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def consume_first(bootstrap_servers: str, topic: str) -> tuple[bytes, bytes]:
    """Read the topic from its earliest offset and return the first record's key and value."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + CONSUME_TIMEOUT
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                if records:
                    return records[0].key, records[0].value
    finally:
        await consumer.stop()
    raise AssertionError(f"no record in topic {topic} within {CONSUME_TIMEOUT:.0f} s")


async def list_topics(bootstrap_servers: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        topics: list[str] = await admin.list_topics()
    finally:
        await admin.close()
    return topics


async def test_broker_round_trip(broker: KafkaBroker) -> None:
    topic = new_topic()

    await produce(broker.bootstrap_servers, topic, b"contact-1", b'{"phone": "+13347938701"}')
    key, value = await consume_first(broker.bootstrap_servers, topic)

    assert broker.bootstrap_servers == f"{LOOPBACK}:{broker.port}"
    assert key == b"contact-1"
    assert value == b'{"phone": "+13347938701"}'


async def test_broker_keeps_data_after_kill(broker: KafkaBroker) -> None:
    topic = new_topic()
    bootstrap_before = broker.bootstrap_servers
    cluster_id_before = broker.cluster_id_path.read_text()
    await produce(broker.bootstrap_servers, topic, b"before-crash", b"value-1")

    broker.kill()
    assert not broker.is_running()
    broker.restart()

    assert broker.is_running()
    assert broker.bootstrap_servers == bootstrap_before
    assert broker.cluster_id_path.read_text() == cluster_id_before
    assert topic in await list_topics(broker.bootstrap_servers)
    assert await consume_first(broker.bootstrap_servers, topic) == (b"before-crash", b"value-1")


def test_restart_rejects_port_taken_meanwhile(broker: KafkaBroker) -> None:
    assert broker.port is not None
    broker.stop()

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        # SO_REUSEADDR lets this bind succeed while the broker's old connections sit in TIME_WAIT.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((LOOPBACK, broker.port))
        squatter.listen()
        with pytest.raises(LocalStackError) as raised:
            broker.restart()

    try:
        assert f"port {broker.port}" in str(raised.value)
        assert "already in use" in str(raised.value)
        assert not broker.is_running()
    finally:
        broker.start()
    assert broker.is_running()


async def test_busy_port_picks_free_port(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind((LOOPBACK, 0))
        squatter.listen()
        busy_port = squatter.getsockname()[1]
        settings = KafkaBrokerSettings(
            port=busy_port, controller_port=0, data_dir=tmp_path / "data"
        )
        kafka = KafkaBroker(settings)

        # start() blocks here inside the test's running event loop, which it must support.
        with caplog.at_level(logging.WARNING, logger="local_stack.process"):
            kafka.start()
        try:
            topic = new_topic()
            await produce(kafka.bootstrap_servers, topic, b"k", b"v")
            consumed = await consume_first(kafka.bootstrap_servers, topic)
        finally:
            kafka.stop()

    assert kafka.port != busy_port
    assert kafka.bootstrap_servers != f"{LOOPBACK}:{busy_port}"
    assert consumed == (b"k", b"v")
    assert any(f"Port {busy_port}" in record.getMessage() for record in caplog.records)
    assert not kafka.is_running()


def test_broker_exit_raises_with_log(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # The storage belongs to node 99, not node 1, so the broker exits at start-up.
    (data_dir / "meta.properties").write_text(
        "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=99\n"
        "directory.id=AAAAAAAAAAAAAAAAAAAAAQ\n"
    )
    kafka = KafkaBroker(KafkaBrokerSettings(port=0, controller_port=0, data_dir=data_dir))

    with pytest.raises(LocalStackError) as raised:
        kafka.start()

    message = str(raised.value)
    assert "Kafka broker exited with code 1 during start-up" in message
    assert "Stored node id 99" in message
    assert str(kafka.log_path) in message
    assert not kafka.is_running()


def test_start_timeout_kills_broker(tmp_path: Path) -> None:
    kafka = KafkaBroker(KafkaBrokerSettings(port=0, controller_port=0, data_dir=tmp_path / "data"))

    with pytest.raises(LocalStackError) as raised:
        kafka.start(timeout=0.2)

    assert "Timed out after 0.2 s" in str(raised.value)
    assert "LOCAL_KAFKA_STARTUP_TIMEOUT" in str(raised.value)
    assert not kafka.is_running()


def test_prepare_redoes_only_incomplete_cache(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    KafkaBroker(KafkaBrokerSettings(cache_dir=cache_dir)).prepare()
    # Without mvn, prepare can only succeed by reusing the cache, and fails when it must download.
    offline = KafkaBroker(KafkaBrokerSettings(cache_dir=cache_dir, mvn="/nonexistent/mvn"))

    offline.prepare()
    (offline.jar_dir / "lib.complete").unlink()
    with pytest.raises(LocalStackError) as raised:
        offline.prepare()

    assert (offline.lib_dir / f"kafka_2.13-{offline.settings.version}.jar").is_file()
    assert "mvn not found" in str(raised.value)


@pytest.mark.parametrize("binary", ["java", "mvn"])
def test_missing_binary_names_fix(tmp_path: Path, binary: str) -> None:
    missing = f"/nonexistent/{binary}"
    settings = KafkaBrokerSettings(
        cache_dir=tmp_path / "cache", data_dir=tmp_path / "data", **{binary: missing}
    )

    with pytest.raises(LocalStackError) as raised:
        KafkaBroker(settings).prepare()

    message = str(raised.value)
    assert f"{binary} not found" in message
    assert repr(missing) in message
    assert "apt-get install openjdk-17-jdk-headless maven" in message
    assert not (tmp_path / "cache" / settings.version / "lib").exists()


@pytest.mark.skipif(
    not os.environ.get("LOCAL_KAFKA_CHECK_VERSION"),
    reason="set LOCAL_KAFKA_CHECK_VERSION=4.1.1 to check another Kafka version",
)
async def test_other_version_round_trip(tmp_path: Path) -> None:
    version = os.environ["LOCAL_KAFKA_CHECK_VERSION"]
    settings = KafkaBrokerSettings(
        version=version, port=0, controller_port=0, data_dir=tmp_path / "data"
    )
    kafka = KafkaBroker(settings)
    topic = new_topic()

    kafka.start()
    try:
        await produce(kafka.bootstrap_servers, topic, b"k", b"v")
        consumed = await consume_first(kafka.bootstrap_servers, topic)
    finally:
        kafka.stop()

    assert consumed == (b"k", b"v")
    assert f"kafka_2.13-{version}.jar" in {jar.name for jar in kafka.lib_dir.iterdir()}
