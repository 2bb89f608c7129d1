"""The whole local stack in one object: Kafka broker, S3 server, Genesys emulator, CRM receiver.

`stream-app demo`, the test fixtures and `local-stack up` all start the same four services through
this class, so what a new user runs by hand is what the tests run against. Every service listens on
127.0.0.1 only. This module does not configure the product; `env()` returns the settings that point
a worker at the stack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from local_stack.crm_receiver import DEFAULT_SECRET, CrmReceiver
from local_stack.genesys_emulator.launcher import GenesysEmulator
from local_stack.genesys_emulator.settings import EmulatorSettings
from local_stack.kafka import KafkaBroker, KafkaBrokerSettings
from local_stack.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, S3Server

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class StackPorts:
    """Preferred ports; 0 picks a free port, and a busy preferred port falls back to a free one."""

    kafka: int = 9092
    kafka_controller: int = 9093
    s3: int = 9000
    genesys: int = 8089
    crm: int = 8090

    @classmethod
    def any_free(cls) -> StackPorts:
        return cls(kafka=0, kafka_controller=0, s3=0, genesys=0, crm=0)


@dataclass
class LocalStack:
    """Start and stop the four local services in order; each stays reachable for fault tests."""

    work_dir: Path
    ports: StackPorts = field(default_factory=StackPorts)
    bucket: str = "stream-app"
    webhook_secret: str = DEFAULT_SECRET
    kafka_version: str | None = None
    emulator_overrides: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log_dir = self.work_dir / "logs"

        kafka_settings = KafkaBrokerSettings(
            port=self.ports.kafka,
            controller_port=self.ports.kafka_controller,
            data_dir=self.work_dir / "kafka-data",
        )
        if self.kafka_version:
            kafka_settings = kafka_settings.model_copy(update={"version": self.kafka_version})
        self.kafka = KafkaBroker(kafka_settings)
        self.s3 = S3Server(log_dir, port=self.ports.s3, bucket=self.bucket)
        emulator_settings = EmulatorSettings(port=self.ports.genesys).model_copy(
            update=self.emulator_overrides
        )
        self.genesys = GenesysEmulator(emulator_settings, log_dir)
        self.crm = CrmReceiver(log_dir, port=self.ports.crm, secret=self.webhook_secret)

    def start(self) -> None:
        """Start every service, stopping the ones already started if a later one fails."""
        self.kafka.prepare()
        started: list[object] = []
        try:
            for service in (self.kafka, self.s3, self.genesys, self.crm):
                service.start()
                started.append(service)
        except BaseException:
            self.stop()
            raise
        logger.info("Local stack ready: %s", self.addresses())

    def stop(self) -> None:
        """Stop the services in reverse order; safe to call more than once."""
        for service in (self.crm, self.genesys, self.s3, self.kafka):
            try:
                service.stop()
            except Exception:
                logger.exception("Failed to stop %s", type(service).__name__)

    def addresses(self) -> dict[str, str]:
        return {
            "kafka": self.kafka.bootstrap_servers,
            "s3": self.s3.endpoint_url,
            "genesys": self.genesys.base_url,
            "crm_webhook": self.crm.webhook_url,
        }

    def env(self) -> dict[str, str]:
        """Return the STREAM_APP_* settings that point a worker at this stack."""
        emulator = self.genesys.settings
        return {
            "STREAM_APP_KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "STREAM_APP_S3_ENDPOINT_URL": self.s3.endpoint_url,
            "STREAM_APP_S3_BUCKET": self.bucket,
            "STREAM_APP_S3_REGION": REGION,
            "STREAM_APP_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "STREAM_APP_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "STREAM_APP_GENESYS_API_URL": self.genesys.base_url,
            "STREAM_APP_GENESYS_LOGIN_URL": self.genesys.base_url,
            "STREAM_APP_GENESYS_CLIENT_ID": emulator.client_id,
            "STREAM_APP_GENESYS_CLIENT_SECRET": emulator.client_secret.get_secret_value(),
            "STREAM_APP_WEBHOOK_URL": self.crm.webhook_url,
            "STREAM_APP_WEBHOOK_SECRET": self.webhook_secret,
        }
