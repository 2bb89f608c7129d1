import csv
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream_app.csv_codec import decode_csv, detect_encoding, encode_csv, read_source_file


def test_encode_csv_layout() -> None:
    data = encode_csv(["id", "name"], [["1", "Dothan"], ["2", "Ozark"]])

    assert data == b"id,name\r\n1,Dothan\r\n2,Ozark\r\n"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("plain", "plain"),
        ("", ""),
        ("+13347938701", "+13347938701"),
        ("a,b", '"a,b"'),
        ('say "hi"', '"say ""hi"""'),
        ("two words", '"two words"'),
        (" leading", '" leading"'),
        ("trailing ", '"trailing "'),
        ("tab\there", '"tab\there"'),
        ("line\r\nbreak", '"line\r\nbreak"'),
        ("line\nbreak", '"line\nbreak"'),
        ("O\u2019Brien", "O\u2019Brien"),
        ("no\u00a0break", '"no\u00a0break"'),
        ("para\u2029graph", '"para\u2029graph"'),
        ("form\x0cfeed", '"form\x0cfeed"'),
    ],
)
def test_encode_csv_quoting(value: str, encoded: str) -> None:
    data = encode_csv(["a", "b"], [[value, "x"]])

    assert data.decode("utf-8").split("\r\n", 1)[1] == f"{encoded},x\r\n"


def test_encode_csv_quotes_header_with_space() -> None:
    assert encode_csv(["Hospital Name"], []) == b'"Hospital Name"\r\n'


def test_encode_csv_lone_empty_field_quoted() -> None:
    data = encode_csv(["phone"], [[""], ["1"]])

    assert data == b'phone\r\n""\r\n1\r\n'
    assert decode_csv(data) == (["phone"], [[""], ["1"]])


def test_encode_csv_no_bom_no_trailing_blank_row() -> None:
    data = encode_csv(["id"], [["1"]])

    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.endswith(b"1\r\n")
    assert not data.endswith(b"\r\n\r\n")


def test_encode_csv_accepts_mapping_rows() -> None:
    rows = [{"name": "Dothan", "id": "1", "ignored": "x"}]

    assert encode_csv(["id", "name"], rows) == b"id,name\r\n1,Dothan\r\n"


@pytest.mark.parametrize(
    ("columns", "rows", "message"),
    [
        ([], [], "at least one column"),
        (["id", "id"], [], "repeat"),
        (["id", "name"], [["1"]], "row 0 has 1 values, expected 2"),
        (["id", "name"], [{"id": "1"}], "row 0 has no value for column"),
        (["id"], [[1]], "row 0 has a int value"),
        (["id", "name"], [["1", "a"], ["2", None]], "row 1 has a NoneType value"),
        (["id"], [[b"1"]], "row 0 has a bytes value"),
        (["id"], ["1"], "row 0 is a string"),
        (["id"], [["\ud800"]], "cannot be encoded as UTF-8"),
    ],
)
def test_encode_csv_rejects(columns: list[str], rows: list[object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_csv(columns, rows)  # type: ignore[arg-type]


def test_decode_csv_keeps_bom_in_header() -> None:
    header, rows = decode_csv(b"\xef\xbb\xbfid,name\r\n1,a\r\n")

    assert header == ["\ufeffid", "name"]
    assert rows == [["1", "a"]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"id,name\r\n\r\n1,a\r\n", "line 2: blank row"),
        (b"id,name\r\n1\r\n", "line 2: 1 fields, but the header has 2"),
        (b'id\r\n"unterminated\r\n', "malformed CSV"),
        (b'id\r\n"a"b\r\n', "malformed CSV"),
    ],
)
def test_decode_csv_rejects(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_csv(data)


_text = st.text(st.characters(exclude_categories=["Cs"]))
_column_names = st.lists(_text, min_size=1, max_size=6, unique=True)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    columns = draw(_column_names)
    row = st.lists(_text, min_size=len(columns), max_size=len(columns))
    rows = draw(st.lists(row, max_size=8))
    return columns, rows


@given(table=tables())
def test_csv_round_trip(table: tuple[list[str], list[list[str]]]) -> None:
    columns, rows = table

    assert decode_csv(encode_csv(columns, rows)) == (columns, rows)


@given(table=tables())
def test_csv_readable_by_stdlib(table: tuple[list[str], list[list[str]]]) -> None:
    columns, rows = table
    text = encode_csv(columns, rows).decode("utf-8")

    records = list(csv.reader(io.StringIO(text, newline="")))

    assert records == [columns, *rows]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_read_source_file_windows_1252_apostrophe(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.csv", b'"Hospital Name","City"\r\n"O\x92BRIEN","DOTHAN"\r\n')

    source = read_source_file(path)

    assert source.encoding == "cp1252"
    assert list(source) == [{"Hospital Name": "O\u2019BRIEN", "City": "DOTHAN"}]


def test_detect_encoding_tiny_windows_1252_sample() -> None:
    sample = b'"O\x92BRIEN"'

    assert detect_encoding(sample) == "cp1252"
    assert sample.decode(detect_encoding(sample)) == '"O\u2019BRIEN"'


def test_detect_encoding_western_accents_not_cp1250() -> None:
    sample = "M\u00fcller, na\u00efve r\u00e9sum\u00e9, Caf\u00e9 \u201cZ\u00fcrich\u201d".encode(
        "cp1252"
    )

    assert detect_encoding(sample) == "cp1252"


def test_detect_encoding_cyrillic_not_forced_to_cp1252() -> None:
    text = "Привет, как дела? Это тестовая строка на русском языке, Москва."
    sample = text.encode("cp1251")

    assert detect_encoding(sample) == "cp1251"


def test_read_source_file_utf8_bom_removed(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.csv", b"\xef\xbb\xbfid,name\r\n1,Caf\xc3\xa9\r\n")

    source = read_source_file(path)

    assert source.bom_removed is True
    assert source.encoding == "utf-8"
    assert source.columns == ("id", "name")
    assert list(source) == [{"id": "1", "name": "Caf\u00e9"}]


def test_source_file_bom_explicit_encoding(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.csv", b"\xef\xbb\xbfid\r\n1\r\n")

    source = read_source_file(path, encoding="utf-8")

    assert source.bom_removed is True
    assert source.columns == ("id",)


def test_read_source_file_utf8_without_bom(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.csv", "id,name\n1,O\u2019Brien\n".encode())

    source = read_source_file(path)

    assert source.bom_removed is False
    assert source.encoding == "utf-8"
    assert list(source) == [{"id": "1", "name": "O\u2019Brien"}]


def test_read_source_file_utf16(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.csv", "id,name\r\n1,Caf\u00e9\r\n".encode("utf-16"))

    source = read_source_file(path)

    assert source.encoding == "utf-16"
    assert source.bom_removed is True
    assert list(source) == [{"id": "1", "name": "Caf\u00e9"}]


def test_read_source_file_explicit_wrong_encoding(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.csv", b"name\r\nO\x92BRIEN\r\n")

    with pytest.raises(ValueError, match="not valid utf-8: byte 0x92 at offset 7"):
        read_source_file(path, encoding="utf-8")


def test_read_source_file_unknown_encoding(tmp_path: Path) -> None:
    path = _write(tmp_path, "export.csv", b"id\r\n")

    with pytest.raises(ValueError, match="unknown encoding 'klingon'"):
        read_source_file(path, encoding="klingon")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"id,id\r\n1,2\r\n", "repeats a column name"),
    ],
)
def test_read_source_file_rejects_header(tmp_path: Path, data: bytes, message: str) -> None:
    path = _write(tmp_path, "export.csv", data)

    with pytest.raises(ValueError, match=message):
        read_source_file(path)


def test_source_file_width_error_names_line(tmp_path: Path) -> None:
    source = read_source_file(_write(tmp_path, "export.csv", b"id,name\r\n1,a\r\n2\r\n"))

    with pytest.raises(ValueError, match="line 3: 1 fields"):
        list(source)


def test_read_source_file_skips_blank_lines(tmp_path: Path) -> None:
    source = read_source_file(_write(tmp_path, "export.csv", b"id\r\n1\r\n\r\n2\r\n\r\n"))

    assert list(source) == [{"id": "1"}, {"id": "2"}]


def test_read_source_file_jsonl(tmp_path: Path) -> None:
    lines = [
        '{"id": 10001, "name": "O\u2019Brien\u2028Clinic", "rating": 4.50, '
        '"active": true, "fax": null}',
        "",
        '{"id": "10002", "name": "Ozark"}',
    ]
    path = _write(tmp_path, "export.jsonl", "\n".join(lines).encode("utf-8"))

    source = read_source_file(path)

    assert source.format == "jsonl"
    assert source.columns == ("id", "name", "rating", "active", "fax")
    assert list(source) == [
        {
            "id": "10001",
            "name": "O\u2019Brien\u2028Clinic",
            "rating": "4.50",
            "active": "true",
            "fax": None,
        },
        {"id": "10002", "name": "Ozark"},
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"address": {"city": "Dothan"}}', "line 2: key 'address' contains a dict"),
        ("[1, 2]", "line 2: expected a JSON object"),
        ("{", "line 2: not JSON"),
        ('{"rating": NaN}', "line 2: not JSON: NaN is not a JSON value"),
    ],
)
def test_read_source_file_jsonl_rejects(tmp_path: Path, line: str, message: str) -> None:
    data = f'{{"id": "1"}}\n{line}\n'.encode()
    source = read_source_file(_write(tmp_path, "export.ndjson", data))

    with pytest.raises(ValueError, match=message):
        list(source)


def test_source_file_jsonl_first_line_early(tmp_path: Path) -> None:
    # The columns come from the first object, so its problems surface when the file is read.
    with pytest.raises(ValueError, match="line 1: expected a JSON object"):
        read_source_file(_write(tmp_path, "export.jsonl", b"[1]\n"))


def test_read_source_file_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot tell the format of export\.txt"):
        read_source_file(_write(tmp_path, "export.txt", b"id\n1\n"))


def test_read_source_file_format_override(tmp_path: Path) -> None:
    source = read_source_file(_write(tmp_path, "export.txt", b"id\n1\n"), file_format="csv")

    assert list(source) == [{"id": "1"}]


def test_source_file_utf8_sig_without_bom(tmp_path: Path) -> None:
    source = read_source_file(_write(tmp_path, "export.csv", b"id\r\n1\r\n"), encoding="utf-8-sig")

    assert source.bom_removed is False
    assert source.encoding == "utf-8"
