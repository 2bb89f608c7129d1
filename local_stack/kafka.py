"""A real Apache Kafka broker on loopback, run from the Maven Central jars.

The product and its tests need a real broker so that faust's topic creation, consumer groups,
offset commits and a broker crash behave as they do in production. Docker and the Apache tarball
are not available everywhere, so `KafkaBroker` fetches `org.apache.kafka:kafka_2.13` and a logging
binding with Maven into a per-version cache. It then formats a KRaft storage folder and runs
`kafka.Kafka` as a child process in combined broker and controller mode.

This module runs one broker on 127.0.0.1 with replication factor 1. It does not run a multi-broker
cluster, TLS or SASL, and it does not install Java or Maven; it tells the user how to.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import fcntl
import hashlib
import logging
import re
import shutil
import subprocess
import time
import uuid
import zipfile
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from local_stack.process import (
    LOOPBACK,
    LocalStackError,
    ManagedProcess,
    choose_port,
    port_is_free,
    wait_for_port,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

INSTALL_HINT = (
    "Install Java 17 and Maven, e.g. `apt-get install openjdk-17-jdk-headless maven`, "
    "or set LOCAL_KAFKA_JAVA / LOCAL_KAFKA_MVN to their paths."
)

# Both classes live in the kafka_2.13 core jar (checked in 3.9.1, 4.1.1 and 4.4.0).
BROKER_MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"

# The Kafka 3.x tarball ships these two jars as its SLF4J binding; the core jar's POM has none.
RELOAD4J_BINDING_VERSION = "1.7.36"
RELOAD4J_VERSION = "1.2.25"
# The Log4j 2 release that Kafka 4.0 ships; brokers 4.1.1 and 4.4.0 also start with it on Java 17.
LOG4J2_VERSION = "2.24.3"
MAVEN_DEPENDENCY_PLUGIN_VERSION = "3.8.1"

LOG4J_PROPERTIES = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
"""

LOG4J2_PROPERTIES = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
"""

POM_TEMPLATE = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by local_stack.kafka: the jars of one Apache Kafka broker, fetched with
     `mvn dependency:copy-dependencies`. Edits are overwritten. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.stack</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka_version}</version>
    </dependency>
{logging_dependencies}
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>{plugin_version}</version>
      </plugin>
    </plugins>
  </build>
</project>
"""

DEPENDENCY_TEMPLATE = """\
    <dependency>
      <groupId>{group}</groupId>
      <artifactId>{artifact}</artifactId>
      <version>{version}</version>
    </dependency>"""

COMPLETE_MARKER = "lib.complete"


def find_project_root(start: Path | None = None) -> Path | None:
    """Return the nearest folder at or above `start` (default: this file's folder) that contains pyproject.toml."""
    folder = (start or Path(__file__)).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return None


def default_cache_root() -> Path:
    """Return `<project root>/.cache`, or `~/.cache/local-stack` when the package is installed without its source tree."""
    root = find_project_root()
    if root is None:
        return Path.home() / ".cache" / "local-stack"
    return root / ".cache"


class KafkaBrokerSettings(BaseSettings):
    """Settings of the local Kafka broker, read from LOCAL_KAFKA_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="LOCAL_KAFKA_", extra="forbid")

    version: str = Field(
        default="3.9.1",
        description="Apache Kafka version on Maven Central, e.g. 3.9.1 or 4.1.1 (3.x or newer).",
    )
    port: int = Field(
        default=9092,
        ge=0,
        le=65535,
        description="Preferred client (PLAINTEXT) port; 0 or a busy port picks a free port.",
    )
    controller_port: int = Field(
        default=9093,
        ge=0,
        le=65535,
        description="Preferred KRaft controller port; 0 or a busy port picks a free port.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: default_cache_root() / "kafka",
        description="Folder for the downloaded jars, one subfolder per Kafka version.",
    )
    data_dir: Path | None = Field(
        default=None,
        description=(
            "KRaft log folder (log.dirs). server.properties, the cluster id and the broker log "
            "are written beside it, named after it. Default: .cache/kafka-data/<version>."
        ),
    )
    heap: str = Field(default="512m", description="JVM maximum heap (-Xmx), e.g. 512m or 1g.")
    java: str = Field(default="java", description="Java 17+ executable, a name on PATH or a path.")
    mvn: str = Field(default="mvn", description="Maven executable, a name on PATH or a path.")
    num_partitions: int = Field(default=1, ge=1, description="Partitions of auto-created topics.")
    startup_timeout: float = Field(
        default=120.0,
        gt=0,
        description="Seconds to wait for the broker to respond to metadata requests.",
    )
    stop_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait after SIGTERM before sending SIGKILL."
    )
    download_timeout: float = Field(
        default=1800.0, gt=0, description="Seconds allowed for the Maven download of the jars."
    )

    @field_validator("version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", value)
        if match is None:
            raise ValueError(
                f"invalid Kafka version {value!r}; expected MAJOR.MINOR.PATCH such as 3.9.1"
            )
        if int(match.group(1)) < 3:
            raise ValueError(f"Kafka {value} is not supported; KRaft mode needs 3.x or newer")
        return value

    @field_validator("heap")
    @classmethod
    def _check_heap(cls, value: str) -> str:
        if re.fullmatch(r"\d+[kKmMgG]?", value) is None:
            raise ValueError(f"invalid JVM heap size {value!r}; expected e.g. 512m or 1g")
        return value

    @model_validator(mode="after")
    def _check_ports_differ(self) -> KafkaBrokerSettings:
        if self.port and self.port == self.controller_port:
            raise ValueError(f"port and controller_port must differ, both are {self.port}")
        return self

    @property
    def major_version(self) -> int:
        return int(self.version.split(".", 1)[0])


class KafkaBroker:
    """One Kafka broker in KRaft combined mode on 127.0.0.1, as a child process.

    Call `prepare` once (it downloads the jars on first use), then `start`. `stop`, `kill` and
    `restart` keep the ports and the data, so a restarted broker serves the same topics and
    messages. The ports are chosen on the first `start` and kept for the life of this object.
    """

    def __init__(self, settings: KafkaBrokerSettings | None = None) -> None:
        self.settings = settings or KafkaBrokerSettings()
        version = self.settings.version
        self.jar_dir = self.settings.cache_dir / version
        self.lib_dir = self.jar_dir / "lib"
        self.data_dir = self.settings.data_dir or default_cache_root() / "kafka-data" / version
        self.port: int | None = None
        self.controller_port: int | None = None
        self._process: ManagedProcess | None = None

    # Files beside the data folder, so that log.dirs contains only what Kafka writes.
    @property
    def log_path(self) -> Path:
        """Broker output (stdout and stderr of the JVM), appended across restarts."""
        return self._sibling("broker.log")

    @property
    def server_properties_path(self) -> Path:
        return self._sibling("server.properties")

    @property
    def cluster_id_path(self) -> Path:
        return self._sibling("cluster-id")

    @property
    def bootstrap_servers(self) -> str:
        """`127.0.0.1:<port>`; raises LocalStackError before the first `start` chose the port."""
        if self.port is None:
            raise LocalStackError("Kafka broker has no port yet; call start() first")
        return f"{LOOPBACK}:{self.port}"

    def is_running(self) -> bool:
        return self._process is not None and self._process.is_running()

    def _sibling(self, suffix: str) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.{suffix}"

    # -- prepare -------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Download the broker's jars into `<cache_dir>/<version>/lib` unless they are there already.

        The first call for a version runs Maven against Maven Central, which may take a few
        minutes. Later calls only check the cache and need no mvn. A download that did not finish
        is redone. Raises LocalStackError when java is missing, when a needed download finds no
        mvn or fails, or when the jars lack the broker's main classes.
        """
        self._require_executable(self.settings.java, "java")
        self.jar_dir.mkdir(parents=True, exist_ok=True)

        with _file_lock(self.jar_dir / ".lock"):
            if self._jars_complete():
                logger.debug("Kafka %s jars already in %s", self.settings.version, self.lib_dir)
            else:
                self._download_jars()
            self._write_logging_config()

    def _jars_complete(self) -> bool:
        marker = self.jar_dir / COMPLETE_MARKER
        if not marker.is_file() or not self._kafka_jar().is_file():
            return False

        recorded = marker.read_text().strip()
        return recorded in {_sha256(pom) for pom in self._candidate_poms()}

    def _kafka_jar(self) -> Path:
        return self.lib_dir / f"kafka_2.13-{self.settings.version}.jar"

    def _candidate_poms(self) -> list[str]:
        """Return the POMs to try, the likely one first; 4.x needs the binding that fits its slf4j-api."""
        if self.settings.major_version == 3:
            return [_pom(self.settings.version, _reload4j_dependencies())]

        # kafka_2.13 4.0.x and 4.1.1 bring slf4j-api 1.7.36; a later release may move to 2.x,
        # whose Log4j binding is a different artifact.
        return [
            _pom(self.settings.version, _log4j2_dependencies(slf4j_major=1)),
            _pom(self.settings.version, _log4j2_dependencies(slf4j_major=2)),
        ]

    def _download_jars(self) -> None:
        mvn = self._require_executable(self.settings.mvn, "mvn")
        marker = self.jar_dir / COMPLETE_MARKER
        marker.unlink(missing_ok=True)

        started = time.monotonic()
        logger.info(
            "Downloading Apache Kafka %s jars from Maven Central into %s; this may take a few minutes",
            self.settings.version,
            self.lib_dir,
        )
        for pom in self._candidate_poms():
            self._run_maven(mvn, pom)
            if self._binding_fits_slf4j(pom):
                break
            logger.info(
                "The Log4j SLF4J binding does not fit the slf4j-api jar; fetching the other one"
            )
        else:
            raise LocalStackError(
                f"No Log4j SLF4J binding fits the slf4j-api jar in {self.lib_dir}; "
                "check the jars there and the POM in local_stack/kafka.py."
            )

        self._check_kafka_jar()
        marker.write_text(_sha256(pom) + "\n")
        logger.info(
            "Kafka %s jars ready in %s (%.0f s)",
            self.settings.version,
            self.lib_dir,
            time.monotonic() - started,
        )

    def _run_maven(self, mvn: str, pom: str) -> None:
        """Write `pom` and copy its runtime dependencies into a fresh lib folder."""
        (self.jar_dir / "pom.xml").write_text(pom)
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        mvn_log = self.jar_dir / "mvn.log"
        argv = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "dependency:copy-dependencies",
            "-DoutputDirectory=lib",
            "-DincludeScope=runtime",
        ]
        logger.info("Running %s in %s", " ".join(argv), self.jar_dir)

        try:
            with mvn_log.open("wb") as log:
                result = subprocess.run(  # noqa: S603 - argv is built here from settings
                    argv,
                    cwd=self.jar_dir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=self.settings.download_timeout,
                    check=False,
                )
        except subprocess.TimeoutExpired as exc:
            raise LocalStackError(
                f"Maven did not finish the Kafka {self.settings.version} download within "
                f"{self.settings.download_timeout:.0f} s (LOCAL_KAFKA_DOWNLOAD_TIMEOUT). "
                f"Output tail:\n{_tail(mvn_log)}"
            ) from exc

        if result.returncode != 0:
            raise LocalStackError(
                f"Maven failed (exit code {result.returncode}) to download Apache Kafka "
                f"{self.settings.version} from Maven Central into {self.lib_dir}. Check the "
                f"version exists and Maven Central is reachable. Output tail:\n{_tail(mvn_log)}"
            )

    def _binding_fits_slf4j(self, pom: str) -> bool:
        """Tell whether the Log4j 2 binding in `pom` matches the major version of lib's slf4j-api jar."""
        if self.settings.major_version == 3:
            return True

        slf4j_major = _slf4j_api_major(self.lib_dir)
        if slf4j_major is None:
            raise LocalStackError(f"No slf4j-api jar in {self.lib_dir} after the Maven download")
        wants_slf4j2 = "<artifactId>log4j-slf4j2-impl</artifactId>" in pom
        return wants_slf4j2 == (slf4j_major >= 2)

    def _check_kafka_jar(self) -> None:
        jar = self._kafka_jar()
        if not jar.is_file():
            raise LocalStackError(
                f"Missing {jar.name} in {self.lib_dir} after the Maven download; "
                f"check that Apache Kafka {self.settings.version} exists on Maven Central."
            )

        expected = {
            name.replace(".", "/") + ".class" for name in (BROKER_MAIN_CLASS, STORAGE_TOOL_CLASS)
        }
        with zipfile.ZipFile(jar) as archive:
            missing = expected - set(archive.namelist())
        if missing:
            raise LocalStackError(
                f"{jar.name} lacks {', '.join(sorted(missing))}; this launcher does not support "
                f"Kafka {self.settings.version}."
            )

    def _write_logging_config(self) -> None:
        path, text = self._logging_config()
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)

    def _logging_config(self) -> tuple[Path, str]:
        if self.settings.major_version == 3:
            return self.jar_dir / "log4j.properties", LOG4J_PROPERTIES
        return self.jar_dir / "log4j2.properties", LOG4J2_PROPERTIES

    def _require_executable(self, command: str, name: str) -> str:
        path = shutil.which(command)
        if path is None:
            raise LocalStackError(
                f"{name} not found: {command!r} is not an executable on PATH. "
                f"The local Kafka broker needs Java 17+ and Maven 3. {INSTALL_HINT}"
            )
        return path

    # -- start and stop ------------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> None:
        """Start the broker and block until its metadata response lists it as a broker.

        Calls `prepare` first, so a missing cache is downloaded here. Chooses the ports on the
        first call and keeps them. Formats the data folder only if it contains no meta.properties.
        Works with or without a running asyncio loop in the calling thread, but blocks that thread.
        Raises LocalStackError with the broker log tail when the broker exits, a port is taken,
        or `timeout` (default: the startup_timeout setting) passes; the broker is killed then.
        """
        if self.is_running():
            return

        self.prepare()
        self._choose_ports()
        self._check_ports_free()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server_properties_path.write_text(self._server_properties())
        self._format_storage_if_needed()

        process = self._broker_process()
        started = time.monotonic()
        process.start()
        try:
            self._wait_until_ready(
                process, self.settings.startup_timeout if timeout is None else timeout
            )
        except BaseException:
            process.kill()
            raise
        logger.info(
            "Kafka %s broker ready at %s (data %s, %.1f s)",
            self.settings.version,
            self.bootstrap_servers,
            self.data_dir,
            time.monotonic() - started,
        )

    def stop(self) -> None:
        """Stop the broker with SIGTERM (a controlled shutdown), SIGKILL after stop_timeout; idempotent."""
        if self._process is not None:
            self._process.stop(self.settings.stop_timeout)

    def kill(self) -> None:
        """Kill the broker with SIGKILL, as a crash would; the data stays for `restart`."""
        if self._process is not None:
            self._process.kill()

    def restart(self, timeout: float | None = None) -> None:
        """Stop the broker if it runs, then start it on the same ports and data and wait for it.

        After `kill`, the controller registers the new broker only once the old registration's
        session expires (broker.session.timeout.ms, 9 s by default in Kafka 3.9.1 and 4.4.0).
        So that restart took about 15 s instead of about 5 s on a 2-core test machine.
        """
        self.stop()
        self.start(timeout)

    def _choose_ports(self) -> None:
        if self.port is not None and self.controller_port is not None:
            return

        # choose_port logs a warning when a preferred port is busy.
        port = choose_port(self.settings.port)
        controller_port = choose_port(self.settings.controller_port)
        while controller_port == port:
            controller_port = choose_port(0)
        self.port, self.controller_port = port, controller_port

    def _check_ports_free(self) -> None:
        for label, port in (("client", self.port), ("controller", self.controller_port)):
            assert port is not None
            if not port_is_free(port):
                raise LocalStackError(
                    f"Kafka {label} port {port} on {LOOPBACK} is already in use by another "
                    "process. Stop that process, or create a new KafkaBroker to choose new ports."
                )

    def _server_properties(self) -> str:
        """Return server.properties for one KRaft node that is both broker and controller."""
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{LOOPBACK}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{LOOPBACK}:{self.port},CONTROLLER://{LOOPBACK}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir.resolve()),
            "num.partitions": str(self.settings.num_partitions),
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
        }
        if self.settings.major_version >= 4:
            # Share groups (KIP-932) exist from 4.0. Their state topic defaults to 3 replicas and
            # a min ISR of 2 (4.1.1), which one broker cannot serve.
            settings["share.coordinator.state.topic.replication.factor"] = "1"
            settings["share.coordinator.state.topic.min.isr"] = "1"

        lines = ["# Written by local_stack.kafka on each start; edits are overwritten."]
        lines += [f"{key}={value}" for key, value in settings.items()]
        return "\n".join(lines) + "\n"

    def _java_argv(self, main_class: str, *args: str) -> list[str]:
        java = self._require_executable(self.settings.java, "java")
        logging_path, _ = self._logging_config()
        if self.settings.major_version == 3:
            logging_option = f"-Dlog4j.configuration=file:{logging_path}"
        else:
            logging_option = f"-Dlog4j2.configurationFile={logging_path}"

        return [
            java,
            f"-Xmx{self.settings.heap}",
            "-Djava.awt.headless=true",
            logging_option,
            "-cp",
            # The JVM expands a trailing `*` in -cp itself; no shell is involved.
            f"{self.lib_dir}/*",
            main_class,
            *args,
        ]

    def _format_storage_if_needed(self) -> None:
        if (self.data_dir / "meta.properties").is_file():
            logger.info("Reusing formatted Kafka data in %s", self.data_dir)
            return

        cluster_id = self._cluster_id()
        argv = self._java_argv(
            STORAGE_TOOL_CLASS,
            "format",
            "-t",
            cluster_id,
            "-c",
            str(self.server_properties_path),
        )
        logger.info("Formatting Kafka storage in %s with cluster id %s", self.data_dir, cluster_id)
        try:
            result = subprocess.run(  # noqa: S603 - argv is built here from settings
                argv,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=120,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalStackError(
                f"Kafka StorageTool format timed out after 120 s: {argv}"
            ) from exc

        if result.returncode != 0:
            output = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
            raise LocalStackError(
                f"Kafka StorageTool format failed (exit code {result.returncode}) for "
                f"{self.data_dir}. Delete that folder if it holds data from another version. "
                f"Output tail:\n{output}"
            )

    def _cluster_id(self) -> str:
        """Return the stored cluster id, creating one on first use, so a re-format keeps it."""
        if self.cluster_id_path.is_file():
            return self.cluster_id_path.read_text().strip()

        cluster_id = _random_kafka_uuid()
        self.cluster_id_path.write_text(cluster_id + "\n")
        return cluster_id

    def _broker_process(self) -> ManagedProcess:
        argv = self._java_argv(BROKER_MAIN_CLASS, str(self.server_properties_path))
        if self._process is None or self._process.argv != argv:
            self._process = ManagedProcess(
                "kafka-broker", argv, self.log_path, cwd=self.data_dir.parent
            )
        return self._process

    # -- readiness -----------------------------------------------------------------------------

    def _wait_until_ready(self, process: ManagedProcess, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no metadata request sent yet"
        while time.monotonic() < deadline:
            if not process.is_running():
                raise LocalStackError(
                    f"Kafka broker exited with code {process.exit_code()} during start-up. "
                    f"{self._port_hint(process)}Log {self.log_path} tail:\n{process.log_tail()}"
                )

            assert self.port is not None
            if not wait_for_port(self.port, min(1.0, max(deadline - time.monotonic(), 0.1))):
                continue

            try:
                brokers = _run_in_own_loop(_describe_brokers(self.bootstrap_servers))
            except Exception as exc:  # any client error means "not ready yet", so retry
                last_error = f"{type(exc).__name__}: {exc}"
                logger.debug("Kafka metadata request failed, retrying: %s", last_error)
                time.sleep(0.5)
                continue

            if any(broker.get("port") == self.port for broker in brokers):
                return
            last_error = f"metadata lists no broker on port {self.port}: {brokers}"
            time.sleep(0.5)

        raise LocalStackError(
            f"Timed out after {timeout:g} s waiting for the Kafka broker at "
            f"{self.bootstrap_servers} to respond to a metadata request (last error: "
            f"{last_error}). Raise LOCAL_KAFKA_STARTUP_TIMEOUT on a slow machine. "
            f"Log {self.log_path} tail:\n{process.log_tail()}"
        )

    def _port_hint(self, process: ManagedProcess) -> str:
        if "Address already in use" not in process.log_tail(200):
            return ""
        return (
            f"Port {self.port} or {self.controller_port} on {LOOPBACK} was taken by another "
            "process after this launcher chose it. "
        )


async def _describe_brokers(bootstrap_servers: str) -> list[dict[str, Any]]:
    """Send one Metadata request and return its broker list (node_id, host, port, rack)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    try:
        await admin.start()
        cluster: dict[str, Any] = await admin.describe_cluster()
    finally:
        await admin.close()
    brokers: list[dict[str, Any]] = cluster.get("brokers", [])
    return brokers


def _run_in_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a new event loop in a helper thread and return its result.

    A helper thread works whether or not the caller's thread runs a loop. It also keeps the
    caller's current event loop, which asyncio.run in the main thread would reset to None.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _pom(kafka_version: str, logging_dependencies: list[tuple[str, str, str]]) -> str:
    dependencies = "\n".join(
        DEPENDENCY_TEMPLATE.format(group=group, artifact=artifact, version=version)
        for group, artifact, version in logging_dependencies
    )
    return POM_TEMPLATE.format(
        kafka_version=kafka_version,
        logging_dependencies=dependencies,
        plugin_version=MAVEN_DEPENDENCY_PLUGIN_VERSION,
    )


def _reload4j_dependencies() -> list[tuple[str, str, str]]:
    # Kafka 3.x core's Log4jController imports org.apache.log4j, so include reload4j as the 3.x
    # tarball does.
    return [
        ("org.slf4j", "slf4j-reload4j", RELOAD4J_BINDING_VERSION),
        ("ch.qos.reload4j", "reload4j", RELOAD4J_VERSION),
    ]


def _log4j2_dependencies(slf4j_major: int) -> list[tuple[str, str, str]]:
    binding = "log4j-slf4j2-impl" if slf4j_major >= 2 else "log4j-slf4j-impl"
    group = "org.apache.logging.log4j"
    return [
        (group, "log4j-api", LOG4J2_VERSION),
        (group, "log4j-core", LOG4J2_VERSION),
        (group, binding, LOG4J2_VERSION),
    ]


def _slf4j_api_major(lib_dir: Path) -> int | None:
    for jar in lib_dir.glob("slf4j-api-*.jar"):
        match = re.fullmatch(r"slf4j-api-(\d+)\..*\.jar", jar.name)
        if match:
            return int(match.group(1))
    return None


def _random_kafka_uuid() -> str:
    """Return a cluster id as Kafka's Uuid prints it: 16 random bytes in URL-safe base64, unpadded."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        # Kafka's Uuid.randomUuid (kafka-clients 3.9.1) also rejects ids starting with "-",
        # which the command line would read as an option.
        if not text.startswith("-"):
            return text


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path`, so two processes never fill one jar cache at once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
