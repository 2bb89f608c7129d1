"""CSV encoding for Genesys Cloud contact-list imports, and reading of customer export files.

`encode_csv` writes the file that is archived on S3 and uploaded to Genesys Cloud. Genesys
Cloud's CSV rules: UTF-8, a header line first, comma delimiter, RFC 4180 quoting, and no blank
rows at the end, which "can cause an import failure". `decode_csv` reads such a file back, for
tests and round trips.

`read_source_file` reads the CSV or JSON Lines exports that the ``produce`` command turns into
contact events. Real exports are often not UTF-8: the CMS hospital file, for one, is
Windows-1252 with byte 0x92 for the apostrophe, which must become U+2019 and not a C1
control character.

Nothing here talks to S3, Kafka or Genesys Cloud.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import charset_normalizer

SourceFormat = Literal["csv", "jsonl"]

_CRLF = "\r\n"
_BOMS = (
    # UTF-32 LE starts with the UTF-16 LE BOM, so the UTF-32 marks are tested first.
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def encode_csv(
    column_names: Sequence[str],
    rows: Iterable[Sequence[str] | Mapping[str, str]],
) -> bytes:
    """Encode a header and rows as a Genesys Cloud import file: UTF-8, CRLF, no BOM.

    A row is either a sequence of values in column order or a mapping by column name. A
    field is quoted when it contains a comma, a double quote, a line break or any whitespace,
    and embedded double quotes are doubled (RFC 4180). That is QUOTE_MINIMAL plus the
    whitespace rule, because the Genesys Cloud CSV rules require quotes around values that
    contain spaces. Every record ends with CRLF,
    so the file ends without a blank row. A row of one empty field is written as ``""``, so
    that it cannot be read as a blank line.

    Raises:
        ValueError: there are no columns, a column name repeats, a row has the wrong
            number of values or lacks a column, or a value is not a string or cannot be
            encoded as UTF-8 (a lone surrogate).
    """
    if not column_names:
        raise ValueError("a CSV file needs at least one column")
    if len(set(column_names)) != len(column_names):
        raise ValueError(f"column names repeat: {list(column_names)}")

    lines = [_encode_record(column_names)]
    width = len(column_names)
    for index, row in enumerate(rows):
        # A list of strings of the right length is encoded as it is. Anything else goes through
        # `_row_values`, which maps it to a list or raises the error that names the problem.
        if type(row) is list and len(row) == width:
            try:
                lines.append(_encode_record(row))
                continue
            except TypeError:
                pass
        lines.append(_encode_record(_row_values(column_names, row, index)))

    text = "".join(line + _CRLF for line in lines)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"a value cannot be encoded as UTF-8: {exc.reason}") from exc


def decode_csv(data: bytes) -> tuple[list[str], list[list[str]]]:
    """Decode a CSV file into its header and rows.

    The bytes must be UTF-8. A byte-order mark is kept as U+FEFF in the first column name,
    as Genesys Cloud would see it.

    Raises:
        ValueError: the bytes are not UTF-8, the file is empty, a row is blank or has a
            different number of fields than the header, or the quoting is malformed.
    """
    text = data.decode("utf-8")
    records = _read_csv_records(text)
    try:
        header = next(records)
    except StopIteration:
        raise ValueError("the CSV file is empty; expected a header line") from None
    return header, list(records)


@dataclass(frozen=True)
class SourceFile:
    """A customer export file, decoded, ready to iterate as dict rows.

    `encoding` is the Python codec name used ("utf-8", "cp1252", ...). `bom_removed` is True
    when a byte-order mark was removed from the start. Callers should report it, because a
    BOM left on the first header would make it a different column name.
    `columns` is the CSV header, or the keys of the first object of a JSON Lines file.
    """

    path: Path
    format: SourceFormat
    encoding: str
    bom_removed: bool
    columns: tuple[str, ...]
    text: str = field(repr=False)

    def __iter__(self) -> Iterator[dict[str, str | None]]:
        """Yield one dict per row; blank lines are skipped.

        Raises:
            ValueError: a CSV row has a different number of fields than the header, or a
                JSON line is not an object of scalar values. The message names the line.
        """
        if self.format == "csv":
            return _csv_rows(self.text)
        return _jsonl_rows(self.text)


def read_source_file(
    path: str | Path,
    encoding: str = "auto",
    *,
    file_format: SourceFormat | Literal["auto"] = "auto",
) -> SourceFile:
    """Read a CSV or JSON Lines export and decode it.

    With ``encoding="auto"`` the encoding is detected as follows. A byte-order mark decides
    first. Bytes that are valid UTF-8 are UTF-8. Otherwise charset-normalizer ranks candidate
    code pages, and Windows-1252 wins whenever charset-normalizer lists it as plausible. The
    reason is that charset-normalizer 3.5 cannot tell the Western single-byte code pages
    apart on short or mostly ASCII input. It picks cp1125 for ``b'"O\\x92BRIEN"'`` and cp1250
    for the CMS hospital file, where 0x92 is meant as U+2019. When Windows-1252 is not
    plausible (Cyrillic or Central European text), charset-normalizer's best match is used.

    A leading U+FEFF is removed in every case and reported as `SourceFile.bom_removed`. The
    format comes from the suffix (.csv; .jsonl or .ndjson) unless `file_format` sets it.

    The whole file is read into memory.
    NOTE: that limits input to files that fit in memory; exports of a few hundred MB are fine.

    Raises:
        OSError: the file cannot be read.
        ValueError: the format or encoding is unknown, or the bytes cannot be decoded with
            the chosen encoding. Also raised when a CSV file has no header or repeats a
            column name, and when the first line of a JSON Lines file is invalid, because it
            gives `columns`.
    """
    path = Path(path)
    resolved_format = _source_format(path, file_format)
    data = path.read_bytes()

    codec, text = _decode_source(data, encoding, path)
    # These codecs drop a leading BOM themselves; the others leave it as U+FEFF.
    bom_removed = codec in ("utf-8-sig", "utf-16", "utf-32") and _has_bom(data)
    if text.startswith("\ufeff"):
        text = text[1:]
        bom_removed = True
    codec_name = "utf-8" if codec == "utf-8-sig" else codecs.lookup(codec).name

    columns = _csv_header(text, path) if resolved_format == "csv" else _jsonl_keys(text)
    return SourceFile(
        path=path,
        format=resolved_format,
        encoding=codec_name,
        bom_removed=bom_removed,
        columns=columns,
        text=text,
    )


def detect_encoding(data: bytes) -> str:
    """Return the Python codec name to decode `data` with, by the rules of `read_source_file`.

    Raises:
        ValueError: charset-normalizer finds no plausible encoding (binary data).
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec

    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"

    matches = charset_normalizer.from_bytes(data)
    cp1252_plausible = any("cp1252" in match.could_be_from_charset for match in matches)
    if cp1252_plausible and _decodes_as(data, "cp1252"):
        return "cp1252"

    best = matches.best()
    if best is None:
        raise ValueError("the encoding could not be detected; the file may be binary")
    return best.encoding


# A field is quoted when it contains a comma, a quote or any character for which str.isspace() is
# true: `\s` of a str pattern is that same test, and covers CR and LF.
_NEEDS_QUOTES = re.compile(r'[,"\s]')


def _encode_record(values: Sequence[str]) -> str:
    """Encode one record; raise TypeError if a value is not a string."""
    if len(values) == 1 and values[0] == "":
        return '""'
    search = _NEEDS_QUOTES.search
    return ",".join(
        value if search(value) is None else '"' + value.replace('"', '""') + '"' for value in values
    )


def _row_values(
    column_names: Sequence[str], row: Sequence[str] | Mapping[str, str], index: int
) -> list[str]:
    if isinstance(row, Mapping):
        missing = [column for column in column_names if column not in row]
        if missing:
            raise ValueError(f"row {index} has no value for column(s) {missing}")
        values = [row[column] for column in column_names]
    elif isinstance(row, str):
        raise ValueError(f"row {index} is a string; expected a sequence of values")
    else:
        values = list(row)
        if len(values) != len(column_names):
            raise ValueError(f"row {index} has {len(values)} values, expected {len(column_names)}")

    for value in values:
        if not isinstance(value, str):
            raise ValueError(f"row {index} has a {type(value).__name__} value; expected str")
    return values


def _read_csv_records(text: str) -> Iterator[list[str]]:
    # newline="" keeps CR and LF inside quoted fields as they are, as the csv module requires.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    width: int | None = None
    try:
        for record in reader:
            if not record:
                raise ValueError(f"line {reader.line_num}: blank row")
            if width is None:
                width = len(record)
            elif len(record) != width:
                raise ValueError(
                    f"line {reader.line_num}: {len(record)} fields, but the header has {width}"
                )
            yield record
    except csv.Error as exc:
        raise ValueError(f"line {reader.line_num}: malformed CSV: {exc}") from exc


def _source_format(path: Path, file_format: SourceFormat | Literal["auto"]) -> SourceFormat:
    if file_format != "auto":
        return file_format
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ValueError(
        f"cannot tell the format of {path.name} from its suffix; use .csv or .jsonl, "
        "or set the file format"
    )


def _decode_source(data: bytes, encoding: str, path: Path) -> tuple[str, str]:
    codec = detect_encoding(data) if encoding == "auto" else encoding
    try:
        codecs.lookup(codec)
    except LookupError:
        raise ValueError(f"unknown encoding {codec!r}") from None

    try:
        return codec, data.decode(codec)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path.name} is not valid {codec}: byte 0x{data[exc.start]:02x} at offset "
            f"{exc.start}; pass the file's real encoding"
        ) from exc


def _has_bom(data: bytes) -> bool:
    return any(data.startswith(bom) for bom, _ in _BOMS)


def _decodes_as(data: bytes, codec: str) -> bool:
    try:
        data.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def _csv_header(text: str, path: Path) -> tuple[str, ...]:
    try:
        header = next(_read_csv_records(text))
    except StopIteration:
        raise ValueError(f"{path.name} is empty; expected a header line") from None
    if len(set(header)) != len(header):
        raise ValueError(f"{path.name}: the header repeats a column name: {header}")
    return tuple(header)


def _csv_rows(text: str) -> Iterator[dict[str, str | None]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    try:
        for record in reader:
            if not record:
                continue
            if header is None:
                header = record
                continue
            if len(record) != len(header):
                raise ValueError(
                    f"line {reader.line_num}: {len(record)} fields, "
                    f"but the header has {len(header)}"
                )
            yield dict(zip(header, record, strict=True))
    except csv.Error as exc:
        raise ValueError(f"line {reader.line_num}: malformed CSV: {exc}") from exc


def _jsonl_keys(text: str) -> tuple[str, ...]:
    for row in _jsonl_rows(text):
        return tuple(row)
    return ()


def _jsonl_rows(text: str) -> Iterator[dict[str, str | None]]:
    # str.splitlines would also split at U+2028 and U+2029, which JSON strings may contain.
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line, parse_float=Decimal, parse_constant=_reject_constant)
        except ValueError as exc:
            raise ValueError(f"line {line_number}: not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ValueError(f"line {line_number}: expected a JSON object")
        yield {key: _jsonl_value(value, key, line_number) for key, value in document.items()}


def _jsonl_value(value: Any, key: str, line_number: int) -> str | None:
    # Exports write ids and numbers with their JSON types. The produce command needs strings,
    # and Decimal parsing keeps the exact digits of the file.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    raise ValueError(
        f"line {line_number}: key {key!r} contains a {type(value).__name__}; "
        "expected a string, number, boolean or null"
    )


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")
