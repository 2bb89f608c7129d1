"""Measurements of a running or stopped worker: memory, table files on disk, the machine.

Memory comes from /proc/PID/status (VmHWM is the peak resident set size the kernel recorded for
the process), so it needs Linux and no extra package. Table sizes and entry counts read the
worker's RocksDB folders read-only with faust's own store options, after the worker has stopped.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from faust.stores.rocksdb import RocksDBOptions, Store
from rocksdict import AccessType, Rdict

from bench.perf_figures import parse_proc_status

# The worker's dedupe table (stream_app.worker.app: app.Table("dedupe", ...)).
DEDUPE_TABLE = "dedupe"


def process_memory_kb(pid: int) -> dict[str, int]:
    """Return VmRSS and VmHWM of a process in kB, or nothing when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = parse_proc_status(text)
    return {name: fields[name] for name in ("VmRSS", "VmHWM") if name in fields}


class PeakMemory:
    """The highest VmHWM seen for one process over repeated samples."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self.last_rss_kb = 0

    def sample(self, pid: int | None) -> None:
        if pid is None:
            return
        memory = process_memory_kb(pid)
        self.peak_kb = max(self.peak_kb, memory.get("VmHWM", 0))
        self.last_rss_kb = memory.get("VmRSS", self.last_rss_kb)

    @property
    def peak_mb(self) -> float | None:
        return round(self.peak_kb / 1024, 1) if self.peak_kb else None


def table_paths(data_dir: Path, table: str = DEDUPE_TABLE) -> list[Path]:
    """Return the RocksDB folders of one table, one per partition, under a worker's data folder."""
    return sorted(path for path in data_dir.rglob(f"{table}-*.db") if path.is_dir())


def directory_bytes(paths: Iterable[Path]) -> int:
    """Return the total size of the files under `paths` (apparent sizes, as `du -b` shows)."""
    total = 0
    for path in paths:
        for file in path.rglob("*"):
            if file.is_file():
                total += file.stat().st_size
    return total


def open_read_only(path: Path, options: Mapping[str, Any]) -> Any:
    """Open a table folder read-only with the table's options, so no compaction runs.

    A compaction here could change what is measured: with rocksdict 0.3.29, the second TTL
    database opened in one process drops the worker's dedupe values at compaction (see
    BENCHMARKS.md). Values keep RocksDB's 4-byte TTL suffix, because the folder is not opened as
    a TTL database.
    """
    rocksdb_options = RocksDBOptions(**options)
    return Rdict(
        str(path), options=rocksdb_options.as_options(), access_type=AccessType.read_only()
    )


def count_entries(paths: Iterable[Path], options: Mapping[str, Any]) -> int:
    """Count the keys in these RocksDB folders, leaving out faust's changelog offset key.

    `options` are the table's RocksDB options as the worker passes them to faust.
    """
    total = 0
    for path in paths:
        db = open_read_only(path, options)
        try:
            # Rdict is not a dict: iterating it directly fails in raw mode, keys() works.
            keys = db.keys()
            total += sum(1 for key in keys if key != Store.offset_key)
        finally:
            db.close()
    return total


def machine() -> dict[str, Any]:
    """Return the CPU count and model, memory, Python version and platform of this machine."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    memory_kb = None
    with contextlib.suppress(OSError):
        memory_kb = parse_proc_status(Path("/proc/meminfo").read_text()).get("MemTotal")
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "memory_mb": round(memory_kb / 1024) if memory_kb else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
