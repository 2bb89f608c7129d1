"""The dedupe tables' RocksDB options keep every entry through compaction."""

from __future__ import annotations

from pathlib import Path

from faust.stores.rocksdb import RocksDBOptions

from stream_app.settings import DedupeSettings
from stream_app.worker.app import dedupe_store_options

# Shaped like a dedupe entry: a JSON string of fingerprint, partition, offset and time.
ENTRY = b'"acdaeca0bb89aa29bd266e62020be99a:0:12:1796428148"'
ENTRIES = 2_000


def test_entries_survive_compaction_in_every_partition(tmp_path: Path) -> None:
    options = dedupe_store_options(DedupeSettings())
    names = [f"dedupe-{partition}.db" for partition in range(3)]
    for name in names:
        db = RocksDBOptions(**options).open(tmp_path / name)
        for i in range(ENTRIES):
            db.put(f"key-{i}".encode(), ENTRY)
        db.close()

    # One process opens every partition, as a worker does, and compacts them.
    dbs = {name: RocksDBOptions(**options).open(tmp_path / name) for name in names}
    try:
        for name, db in dbs.items():
            db.compact_range(None, None)
            remaining = sum(1 for _ in db.keys())  # noqa: SIM118 - a rocksdict Rdict, not a dict
            assert remaining == ENTRIES, (
                f"{name} kept {remaining} of {ENTRIES} entries after compaction"
            )
            assert db.get(b"key-0") == ENTRY
    finally:
        for db in dbs.values():
            db.close()
