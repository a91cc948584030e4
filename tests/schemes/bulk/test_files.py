"""Reading uploaded tables (schemes/bulk/files.py): QUALITY.md "Bad input", file-level catalogue.

Every case either reads the file right (cells, row numbers, encoding, delimiter) or refuses it with
a FileProblem whose message names what is wrong (and the row or column where there is one). No
database. The throughput check at the bottom is a function run by hand, not a test:

    cd /work/main && .venv/bin/python -m tests.schemes.bulk.test_files 1000000
"""

import codecs
import csv
import datetime as dt
import io
import os
import re
import struct
import tempfile
import time
import unicodedata
import zipfile
from pathlib import Path
from unittest import mock

import openpyxl
import pytest
from hypothesis import HealthCheck, assume, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from schemes.bulk import files
from schemes.bulk.files import (
    MAX_FIELD_CHARS,
    Column,
    FileProblem,
    RowProblem,
    Table,
    header_key,
    open_table,
    sanitise_file_name,
)

COLUMNS = [
    Column("national_id", aliases=("chfid", "insuree number"), required=True),
    Column("first_name", aliases=("other names",)),
    Column("date_of_birth", aliases=("dob",)),
    Column("amount"),
]
HEADER = "National ID,First name,Date of birth,Amount"


def write(tmp_path: Path, data: bytes | str, name: str = "upload.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def read(path: Path, columns=COLUMNS, **kwargs) -> tuple[Table, list]:
    table = open_table(path, columns, original_name=kwargs.pop("original_name", path.name), **kwargs)
    return table, list(table.rows())


def refusal(path: Path, columns=COLUMNS, **kwargs) -> str:
    """The FileProblem message, whether open_table or the row loop raises it."""
    with pytest.raises(FileProblem) as caught:
        read(path, columns, **kwargs)
    assert caught.value.message == str(caught.value)
    return caught.value.message


def cells_of(rows: list) -> list[list[str]]:
    return [cells for _, cells, _ in rows]


# ---------------------------------------------------------------------------------------------------
# Encodings


def test_utf8_is_read_right(tmp_path):
    path = write(tmp_path, f"{HEADER}\n001,Zoë,1990-01-31,12.50\n002,علي,1985-06-01,3\n")
    table, rows = read(path)
    assert (table.encoding, table.delimiter) == ("utf-8", ",")
    assert table.headers == ["National ID", "First name", "Date of birth", "Amount"]
    assert table.mapping == {"national_id": 0, "first_name": 1, "date_of_birth": 2, "amount": 3}
    assert rows == [
        (2, ["001", "Zoë", "1990-01-31", "12.50"], None),
        (3, ["002", "علي", "1985-06-01", "3"], None),
    ]


def test_pure_ascii_is_utf8(tmp_path):
    table, rows = read(write(tmp_path, f"{HEADER}\n1,Ann,,\n"))
    assert table.encoding == "utf-8"
    assert rows == [(2, ["1", "Ann", "", ""], None)]


def test_utf8_with_bom_is_read_without_the_bom(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + f"{HEADER}\n1,Zoë,,\n".encode())
    table, rows = read(path)
    assert table.encoding == "utf-8-sig"
    assert table.headers[0] == "National ID"  # not "\ufeffNational ID": the column is found
    assert table.mapping["national_id"] == 0
    assert rows == [(2, ["1", "Zoë", "", ""], None)]


def excel_unicode_text(rows: list[list[str]], *, big_endian: bool = False) -> bytes:
    """What Excel's "Unicode Text (*.txt)" writes: tab-delimited UTF-16 with a BOM, CRLF, quotes where needed."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t", lineterminator="\r\n").writerows(rows)
    if big_endian:
        return codecs.BOM_UTF16_BE + buffer.getvalue().encode("utf-16-be")
    return codecs.BOM_UTF16_LE + buffer.getvalue().encode("utf-16-le")


@pytest.mark.parametrize("big_endian", [False, True], ids=["LE", "BE"])
def test_utf16_with_bom_as_excel_unicode_text(tmp_path, big_endian):
    data = [
        ["CHFID", "Other names", "DOB", "Amount"],
        ["070001", "Amina\tJuma", "2001-02-03", "1,5"],
        ["070002", "Line one\r\nline two", "", "7"],
        ["070003", "名前 😀", "", ""],
    ]
    table, rows = read(write(tmp_path, excel_unicode_text(data, big_endian=big_endian), "unicode.txt"))
    assert (table.encoding, table.delimiter) == ("utf-16", "\t")
    assert table.mapping == {"national_id": 0, "first_name": 1, "date_of_birth": 2, "amount": 3}
    assert rows == [(2, data[1], None), (3, data[2], None), (4, data[3], None)]


def test_cp1252_is_read_right(tmp_path):
    text = f"{HEADER}\r\n1,Hélène,,€ 12\r\n2,O’Brien «Jr»,,\r\n"
    table, rows = read(write(tmp_path, text.encode("cp1252")))
    assert table.encoding == "cp1252"
    assert cells_of(rows) == [["1", "Hélène", "", "€ 12"], ["2", "O’Brien «Jr»", "", ""]]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
def test_encoding_is_decided_on_the_whole_file_not_a_sample(tmp_path, chunk):
    """The first accent comes after the first chunk read: still Windows-1252 (and still UTF-8, with
    multi-byte characters cut by every chunk boundary)."""
    lines = [f"{HEADER}"] + [f"{i},Ann,," for i in range(2, 30)] + ["30,André,,"]
    with mock.patch.object(files, "CHUNK_BYTES", chunk):
        table, rows = read(write(tmp_path, "\n".join(lines).encode("cp1252"), "a.csv"))
        assert table.encoding == "cp1252"
        assert rows[-1] == (30, ["30", "André", "", ""], None)
        table, rows = read(write(tmp_path, "\n".join(lines + ["31,名前😀é,,"]).encode("utf-8"), "b.csv"))
        assert table.encoding == "utf-8"
        assert rows[-2:] == [(30, ["30", "André", "", ""], None), (31, ["31", "名前😀é", "", ""], None)]


@pytest.mark.parametrize("chunk", [3, files.CHUNK_BYTES])
def test_bytes_that_are_not_utf8_in_a_utf8_file_are_refused_with_the_row(tmp_path, chunk):
    lines = [HEADER.encode(), "1,Zoë,,".encode()] + [f"{i},Ann,,".encode() for i in range(3, 40)]
    lines.append(b"40,Andr\xe9,,")  # Windows-1252 pasted into a UTF-8 file
    lines.append(b"41,Ann,,")
    with mock.patch.object(files, "CHUNK_BYTES", chunk):
        message = refusal(write(tmp_path, b"\n".join(lines)))
    assert message.startswith("The file is not UTF-8, UTF-16 or Windows-1252 text (row 40 cannot be read")
    assert "CSV UTF-8" in message


def test_the_row_of_an_undecodable_byte_counts_quoted_newlines_and_blank_lines(tmp_path):
    data = (HEADER + '\r\n1,"Zoë\r\nsecond line",,\r\n\r\n2,Ann,,\r\n3,Andr\xe9,,\r\n').encode("latin-1")
    data = data.replace("Zoë".encode("latin-1"), "Zoë".encode())
    message = refusal(write(tmp_path, data))
    assert "(row 5 cannot be read)" in message  # header 1, Zoë 2 (two lines), blank 3, Ann 4


def test_bytes_undefined_in_cp1252_are_refused_with_the_row(tmp_path):
    data = f"{HEADER}\n1,Hélène,,\n2,Ann,,\n".encode("cp1252") + b"3,A\x81B,,\n"
    message = refusal(write(tmp_path, data))
    assert "(row 4 cannot be read)" in message


def test_invalid_utf8_after_a_utf8_bom_is_refused_with_the_row(tmp_path):
    data = codecs.BOM_UTF8 + f"{HEADER}\n1,Ann,,\n".encode() + b"2,\xff,,\n"
    assert "(row 3 cannot be read)" in refusal(write(tmp_path, data))


def test_invalid_utf16_is_refused_with_the_row(tmp_path):
    good = excel_unicode_text([["CHFID", "Amount"], ["1", "2"]])
    bad = "2\t".encode("utf-16-le") + b"\x00\xd8" + "x\r\n".encode("utf-16-le")  # a lone surrogate
    assert "(row 3 cannot be read)" in refusal(write(tmp_path, good + bad))


def test_cp1252_that_happens_to_hold_a_valid_utf8_pair_is_still_cp1252(tmp_path):
    """"Ü" then two no-break spaces is also one valid UTF-8 letter (U+0720) then a bad byte; French
    "à « " is a valid 3-byte UTF-8 sequence. Neither makes a Windows-1252 file "mixed"."""
    text = f"{HEADER}\n1,ÜBER\xa0\xa0GmbH,,\n2,voilà\xa0« oui »,,\n3,Hélène,,\n"
    table, rows = read(write(tmp_path, text.encode("cp1252")))
    assert table.encoding == "cp1252"
    assert cells_of(rows) == [["1", "ÜBER\xa0\xa0GmbH", "", ""], ["2", "voilà\xa0« oui »", "", ""],
                              ["3", "Hélène", "", ""]]


def test_utf8_pasted_into_a_cp1252_file_is_refused_not_garbled(tmp_path):
    data = f"{HEADER}\n1,Hélène,,\n".encode("cp1252") + "2,O’Brien,,\n".encode()
    message = refusal(write(tmp_path, data))
    assert "(row 3 cannot be read: it mixes Windows-1252 and UTF-8 text)" in message


@pytest.mark.parametrize("codepage, name", [("cp1256", "محمد علي"), ("cp1251", "Иван Петров")])
def test_other_windows_code_pages_are_refused_not_read_as_cp1252(tmp_path, codepage, name):
    data = f"{HEADER}\n1,Ann,,\n2,{name},,\n".encode(codepage)
    message = refusal(write(tmp_path, data))
    assert "(row 3 cannot be read: it looks like text in another code page" in message


def test_utf32_is_refused_clearly(tmp_path):
    message = refusal(write(tmp_path, f"{HEADER}\n1,,,\n".encode("utf-32")))
    assert message.startswith("The file is UTF-32 text, which is not supported.")


def test_utf16_without_a_bom_is_refused_clearly(tmp_path):
    message = refusal(write(tmp_path, f"{HEADER}\n1,Ann,,\n".encode("utf-16-le")))
    assert "UTF-16 text without a byte-order mark" in message


@pytest.mark.parametrize("where", ["start", "late"])
def test_nul_bytes_mean_a_binary_file(tmp_path, where):
    body = f"{HEADER}\n" + "".join(f"{i},Ann,,\n" for i in range(2, 5000))
    data = b"\x00\x01\x02\x03" + body.encode() if where == "start" else body.encode() + b"5000,A\x00n,,\n"
    with mock.patch.object(files, "CHUNK_BYTES", 4096):
        message = refusal(write(tmp_path, data))
    assert message.startswith("The file looks like a binary file, not CSV text.")


def test_nul_characters_in_utf16_mean_a_binary_file(tmp_path):
    data = excel_unicode_text([["CHFID", "Amount"], ["1", "2\x00"]])
    assert refusal(write(tmp_path, data)).startswith("The file looks like a binary file, not CSV text.")


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "This is a PDF document, not a CSV or Excel file."),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "old Excel 97-2003 workbook (.xls)"),
        (b"\x1f\x8b\x08\x00" + bytes(20), "compressed (gzip) file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "This is a picture"),
        (b"<!DOCTYPE html><html><body><table><tr><td>1</td></tr></table>", "web page (HTML)"),
    ],
    ids=["pdf", "xls", "gzip", "png", "html"],
)
def test_other_kinds_of_file_renamed_csv_are_refused_by_content(tmp_path, data, expected):
    assert expected in refusal(write(tmp_path, data, "data.csv"))


def test_a_pdf_renamed_xlsx_is_refused(tmp_path):
    message = refusal(write(tmp_path, b"%PDF-1.4\n" + bytes(range(256)), "data.xlsx"))
    assert message == "This is a PDF document, not a CSV or Excel file."


# ---------------------------------------------------------------------------------------------------
# Delimiters, line ends, row numbers


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiter_is_detected(tmp_path, delimiter):
    lines = [HEADER.split(","), ["1", "Ann, the first; or not", "", "1,5"], ["2", "Bo", "", ""]]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(lines)
    table, rows = read(write(tmp_path, buffer.getvalue()))
    assert table.delimiter == delimiter
    assert cells_of(rows) == lines[1:]


def test_delimiters_inside_quotes_in_the_header_do_not_count(tmp_path):
    table, rows = read(write(tmp_path, 'National ID;"Amount; in, KES, (gross)";First name\n1;2,5;Ann\n'))
    assert table.delimiter == ";"
    assert table.headers == ["National ID", "Amount; in, KES, (gross)", "First name"]
    assert cells_of(rows) == [["1", "2,5", "Ann"]]


def test_a_header_with_one_column_defaults_to_comma(tmp_path):
    table, rows = read(write(tmp_path, "National ID\n1\n2\n"))
    assert table.delimiter == ","
    assert rows == [(2, ["1"], None), (3, ["2"], None)]


def test_excel_sep_line_sets_the_delimiter_and_is_not_a_row(tmp_path):
    table, rows = read(write(tmp_path, "sep=;\r\nNational ID;Amount\r\n1;2,50\r\n"))
    assert (table.delimiter, table.header_row, table.headers) == (";", 1, ["National ID", "Amount"])
    assert rows == [(2, ["1", "2,50"], None)]


def test_crlf_quoted_newlines_and_blank_lines_keep_spreadsheet_row_numbers(tmp_path):
    text = (
        f"{HEADER}\r\n"
        '1,"Ann\r\nMarie",,\r\n'  # row 2: one row with a line break in a cell
        '2,"Bo ""the"" Boss\nJr",,\r\n'  # row 3
        "\r\n"  # row 4: blank, skipped
        ",,,\r\n"  # row 5: empty cells only, skipped
        "3,Cy,,,,extra\r\n"  # row 6: too many cells
        "4,Di,,\r\n"  # row 7
        "\r\n\r\n"  # Excel's trailing blank lines
    )
    table, rows = read(write(tmp_path, text))
    assert [(number, cells[:2]) for number, cells, _ in rows] == [
        (2, ["1", "Ann\r\nMarie"]),
        (3, ["2", 'Bo "the" Boss\nJr']),
        (6, ["3", "Cy"]),
        (7, ["4", "Di"]),
    ]
    assert [problem for _, _, problem in rows] == [
        None, None, RowProblem(6, None, "Row 6: 6 cells where the header has 4."), None
    ]


def test_old_mac_line_ends_work(tmp_path):
    table, rows = read(write(tmp_path, f"{HEADER}\r1,Ann,,\r2,Bo,,\r"))
    assert [number for number, _, _ in rows] == [2, 3]


def test_blank_lines_before_the_header_are_counted(tmp_path):
    table, rows = read(write(tmp_path, f"\n  \n{HEADER}\n1,Ann,,\n"))
    assert table.header_row == 3
    assert rows == [(4, ["1", "Ann", "", ""], None)]


# ---------------------------------------------------------------------------------------------------
# Headers


@pytest.mark.parametrize(
    "header, first, second",
    [
        ("National ID,Amount,amount", '2 (B) "Amount"', '3 (C) "amount"'),
        ("National ID,Date of Birth, DATE-OF-BIRTH ", '2 (B) "Date of Birth"', '3 (C) "DATE-OF-BIRTH"'),
        ("National ID,Notes,notes_", '2 (B) "Notes"', '3 (C) "notes_"'),  # unknown columns too
    ],
)
def test_duplicate_headers_are_refused_naming_both(tmp_path, header, first, second):
    message = refusal(write(tmp_path, f"{header}\n1,2,3\n"))
    assert message == f"Columns {first} and {second} have the same name. Remove or rename one of them."


def test_a_column_and_its_alias_together_are_refused(tmp_path):
    message = refusal(write(tmp_path, "CHFID,National ID\n1,2\n"))
    assert message == 'Columns 1 (A) "CHFID" and 2 (B) "National ID" both mean "national_id". Keep only one of them.'


def test_missing_required_column_is_named_with_the_columns_found(tmp_path):
    message = refusal(write(tmp_path, "First name,DOB\nAnn,2001-01-01\n"))
    assert message == (
        'Required column missing: "national_id" (or "chfid", "insuree number"). '
        'The columns in the file are: "First name", "DOB".'
    )


def test_openimis_aliases_match_case_and_space_insensitively(tmp_path):
    table, rows = read(write(tmp_path, "INSUREE_NUMBER, Other-Names ,dob\n1,Ann,2001-01-01\n"))
    assert table.mapping == {"national_id": 0, "first_name": 1, "date_of_birth": 2}
    assert table.unknown == []


def test_unknown_columns_are_reported_not_refused(tmp_path):
    table, rows = read(write(tmp_path, "National ID,Favourite colour,Amount,Remarks\n1,blue,2,x\n"))
    assert table.unknown == ["Favourite colour", "Remarks"]
    assert table.mapping == {"national_id": 0, "amount": 2}
    assert rows == [(2, ["1", "blue", "2", "x"], None)]


def test_header_text_in_messages_is_one_short_line(tmp_path):
    long = "Remarks " * 20
    message = refusal(write(tmp_path, f'National ID,"Re\u202emarks\r\nand notes",{long},"remarks and  NOTES"\n'))
    assert message == ('Columns 2 (B) "Remarks and notes" and 4 (D) "remarks and NOTES" have the same name. '
                       "Remove or rename one of them.")
    message = refusal(write(tmp_path, f"{long},x\n"))
    assert "\n" not in message and '"Remarks Remarks Remarks Remarks Remarks Remarks Remarks Rem…"' in message


def test_a_blank_header_cell_is_refused_with_its_column(tmp_path):
    message = refusal(write(tmp_path, "National ID,,Amount\n1,x,2\n"))
    assert message.startswith("Column 2 (B) of the header (row 1) is blank.")


def test_trailing_blank_header_cells_from_excel_are_dropped(tmp_path):
    table, rows = read(write(tmp_path, "National ID,Amount,,\n1,2,,\n3,4,,oops\n5,6\n"))
    assert table.headers == ["National ID", "Amount"]
    assert rows == [
        (2, ["1", "2"], None),
        (3, ["3", "4"], RowProblem(3, None, "Row 3, column 4 (D): a value in a column that has no header.")),
        (4, ["5", "6"], None),
    ]


@pytest.mark.parametrize("data", [b"", b"\n\r\n  \n", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, b",,,\n"])
def test_an_empty_file_is_refused(tmp_path, data):
    assert refusal(write(tmp_path, data)).startswith("The file is empty")


def test_header_only_gives_a_table_with_no_rows(tmp_path):
    table, rows = read(write(tmp_path, f"{HEADER}\r\n\r\n"))
    assert table.headers[0] == "National ID"
    assert rows == []


def test_columns_accepting_the_same_header_are_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="both accept"):
        open_table(write(tmp_path, "a\n"), [Column("a"), Column("b", ("A",))], original_name="x.csv")


# ---------------------------------------------------------------------------------------------------
# Rows


def test_ragged_rows_are_marked_and_the_rest_is_kept(tmp_path):
    text = f"{HEADER}\n1,Ann,2001-01-01,5\n2,Bo\n3,Cy,,,9\n4,Di,,,\n5,Ed,,7\n"
    table, rows = read(write(tmp_path, text))
    assert rows == [
        (2, ["1", "Ann", "2001-01-01", "5"], None),
        (3, ["2", "Bo", "", ""], RowProblem(3, None, "Row 3: 2 cells where the header has 4.")),
        (4, ["3", "Cy", "", ""], RowProblem(4, None, "Row 4: 5 cells where the header has 4.")),
        (5, ["4", "Di", "", ""], None),  # a trailing empty cell loses nothing
        (6, ["5", "Ed", "", "7"], None),
    ]
    assert all(len(cells) == len(table.headers) for _, cells, _ in rows)


def test_an_oversize_field_is_a_row_problem(tmp_path):
    text = f"{HEADER}\n1,{'x' * (MAX_FIELD_CHARS + 1)},,\n2,Ann,,\n3,{'y' * MAX_FIELD_CHARS},,\n"
    table, rows = read(write(tmp_path, text))
    assert rows[0][0] == 2
    assert rows[0][2] == RowProblem(2, "First name", 'Row 2, column "First name": the cell has 10,001 characters; '
                                                     "the limit is 10,000.")
    assert rows[1] == (3, ["2", "Ann", "", ""], None)
    assert rows[2][0] == 4 and rows[2][2] is None


def test_a_quote_in_the_middle_of_a_cell_is_a_row_problem_not_garbage(tmp_path):
    table, rows = read(write(tmp_path, f'{HEADER}\n1,"John "Johnny" Smith",,\n2,Ann,,\n'))
    assert rows[0][0] == 2 and rows[0][1] == ["", "", "", ""]
    assert rows[0][2].message.startswith('Row 2: a quote (") in the middle of a cell.')
    assert rows[1] == (3, ["2", "Ann", "", ""], None)


def test_a_quote_that_is_never_closed_refuses_the_file(tmp_path):
    message = refusal(write(tmp_path, f'{HEADER}\n1,Ann,,\n2,"Bo,,\n3,Cy,,\n4,Di,,\n'))
    assert message == 'Row 3: a quote (") opens a cell and is never closed, so the rest of the file cannot be read.'


@pytest.fixture
def default_csv_field_limit():
    """csv.field_size_limit is process-wide: pin Python's default for the test, then put back what was."""
    previous = csv.field_size_limit(131_072)
    yield
    csv.field_size_limit(previous)


def test_an_unclosed_quote_longer_than_the_csv_limit_refuses_the_file(tmp_path, default_csv_field_limit):
    body = "".join(f"{i},Ann,,\n" for i in range(3, 20_000))
    message = refusal(write(tmp_path, f'{HEADER}\n2,"Bo,,\n{body}'))
    assert message.startswith("Row 2: a cell is longer than 131,072 characters, usually because a quote")


def test_more_rows_than_allowed_is_refused(tmp_path, settings):
    text = f"{HEADER}\n" + "".join(f"{i},Ann,,\n\n" for i in range(1, 6))  # 5 rows and 5 blank lines
    table, rows = read(write(tmp_path, text), max_rows=5)
    assert len(rows) == 5
    assert refusal(write(tmp_path, text), max_rows=4) == "The file has more than 4 rows; split it into smaller files."
    settings.MIZANI_IMPORT_MAX_ROWS = 3
    assert refusal(write(tmp_path, text)) == "The file has more than 3 rows; split it into smaller files."


def test_rows_can_be_read_twice(tmp_path):
    table = open_table(write(tmp_path, f"{HEADER}\n1,Ann,,\n"), COLUMNS, original_name="a.csv")
    assert list(table.rows()) == list(table.rows()) == [(2, ["1", "Ann", "", ""], None)]


def test_an_oversize_file_is_refused_before_reading(tmp_path, settings):
    settings.MIZANI_IMPORT_MAX_BYTES = 100
    path = write(tmp_path, f"{HEADER}\n" + "1,Ann,,\n" * 20)
    with mock.patch.object(files, "_detect_encoding", side_effect=AssertionError("read")):
        message = refusal(path)
    assert message == "The file is 204 bytes; the limit is 100 bytes. Split it into smaller files."


def test_the_original_name_is_only_sanitised_metadata(tmp_path):
    table, _ = read(write(tmp_path, f"{HEADER}\n"), original_name="../../etc/pass\u202ewd.xlsx")
    assert table.name == "passwd.xlsx"
    assert table.encoding == "utf-8"  # read as CSV: the content decides, not the name


# ---------------------------------------------------------------------------------------------------
# XLSX


def make_xlsx(path: Path, rows: list[list]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def rewrite_zip(path: Path, *, replace: dict | None = None, add: dict | None = None) -> Path:
    """Rebuild the archive with some members changed (a callable gets the old bytes) or added."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(path) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            change = replace.get(name, data)
            archive.writestr(name, change(data) if callable(change) else change)
        for name, data in add.items():
            archive.writestr(name, data)
    return path


def add_content_type(part: str, content_type: str):
    override = f'<Override PartName="{part}" ContentType="{content_type}"/>'.encode()
    return lambda types: types.replace(b"</Types>", override + b"</Types>")


def test_xlsx_cells_are_converted_the_way_a_clerk_expects(tmp_path):
    path = make_xlsx(tmp_path / "people.xlsx", [
        ["National ID", "First name", "Date of birth", "Amount", "Paid at", "Flag"],
        ["007", "Zoë", dt.date(2001, 2, 3), 424242, dt.datetime(2024, 3, 31, 14, 30), True],
        [535353, "علي", dt.datetime(1999, 12, 31), 1.5e-05, None, None],
        [None, None, None, None, None, None],
        [1234, None, None, 2.5, None, None],
    ])
    # Other writers store whole numbers as floats: 424242.0, and long IDs in Excel's scientific form.
    rewrite_zip(path, replace={"xl/worksheets/sheet1.xml": lambda xml: xml.replace(
        b"<v>424242</v>", b"<v>424242.0</v>").replace(b"<v>535353</v>", b"<v>1.23456789012E+15</v>")})
    table, rows = read(path)
    assert (table.encoding, table.delimiter, table.header_row) == ("xlsx", None, 1)
    assert table.mapping == {"national_id": 0, "first_name": 1, "date_of_birth": 2, "amount": 3}
    assert table.unknown == ["Paid at", "Flag"]
    assert rows == [
        (2, ["007", "Zoë", "2001-02-03", "424242", "2024-03-31 14:30:00", "TRUE"], None),
        # Past 15 digits Excel has lost the last ones: shown as it shows it, for the ID check to name.
        (3, ["1.23456789012E+15", "علي", "1999-12-31", "0.000015", "", ""], None),
        (5, ["1234", "", "", "2.5", "", ""], None),  # row 4 is blank: skipped, counted
    ]


def test_xlsx_by_content_even_when_named_csv(tmp_path):
    path = make_xlsx(tmp_path / "renamed.csv", [["National ID"], ["1"]])
    table, rows = read(path)
    assert table.encoding == "xlsx"
    assert rows == [(2, ["1"], None)]


def test_xlsx_header_below_blank_rows_ragged_and_oversize_cells(tmp_path):
    path = make_xlsx(tmp_path / "a.xlsx", [
        [None],
        ["National ID", "Amount"],
        ["1"],  # a short row is fine: workbooks do not store empty cells
        ["2", "3", "surplus"],
        ["3", "x" * (MAX_FIELD_CHARS + 5)],
    ])
    table, rows = read(path)
    assert table.header_row == 2
    assert rows[0] == (3, ["1", ""], None)
    assert rows[1] == (4, ["2", "3"], RowProblem(4, None, "Row 4: 3 cells where the header has 2."))
    assert rows[2][2] == RowProblem(5, "Amount", 'Row 5, column "Amount": the cell has 10,005 characters; '
                                                 "the limit is 10,000.")


def test_xlsx_duplicate_headers_and_max_rows(tmp_path):
    path = make_xlsx(tmp_path / "dup.xlsx", [["National ID", "national_id"], ["1", "2"]])
    assert refusal(path) == ('Columns 1 (A) "National ID" and 2 (B) "national_id" have the same name. '
                             "Remove or rename one of them.")
    path = make_xlsx(tmp_path / "many.xlsx", [["National ID"], ["1"], ["2"], ["3"]])
    assert refusal(path, max_rows=2) == "The file has more than 2 rows; split it into smaller files."


def test_an_empty_workbook_is_refused(tmp_path):
    assert "is empty: it has no header row" in refusal(make_xlsx(tmp_path / "empty.xlsx", []))


def test_xlsx_over_its_own_size_limit_is_refused(tmp_path, settings):
    path = make_xlsx(tmp_path / "big.xlsx", [["National ID"], ["1"]])
    settings.MIZANI_IMPORT_MAX_XLSX_BYTES = 1000
    message = refusal(path)
    assert message.startswith("The Excel file is ") and "Excel files are limited to 1,000 bytes" in message


@pytest.fixture
def openpyxl_must_not_open(monkeypatch):
    monkeypatch.setattr(openpyxl, "load_workbook", mock.Mock(side_effect=AssertionError("opened")))


def test_zip_bomb_is_refused_before_openpyxl_opens_it(tmp_path, openpyxl_must_not_open):
    """A 50 MB worksheet that compresses to about 50 KB: refused from the zip directory alone."""
    path = make_xlsx(tmp_path / "bomb.xlsx", [["National ID"], ["1"]])
    padding = b" " * (50 * 1024 * 1024)
    rewrite_zip(path, replace={"xl/worksheets/sheet1.xml": lambda xml: xml.replace(
        b"</sheetData>", padding + b"</sheetData>")})
    assert path.stat().st_size < 200 * 1024
    message = refusal(path)
    assert message.startswith("The Excel file would unpack to 50.0 MB")
    assert "refused as unsafe" in message


def test_a_workbook_unpacking_past_the_total_limit_is_refused(tmp_path, settings, openpyxl_must_not_open):
    settings.MIZANI_IMPORT_MAX_XLSX_BYTES = 64 * 1024  # 20 x = 1.25 MB unpacked at most
    path = make_xlsx(tmp_path / "big.xlsx", [["National ID"], ["1"]])
    rewrite_zip(path, add={"xl/media/image1.bin": bytes(3 * 1024 * 1024)})
    with mock.patch.object(files, "XLSX_MAX_RATIO", 10**9):  # only the total can catch it
        assert "refused as unsafe" in refusal(path)


def declare_size(path: Path, member: str, declared: int) -> None:
    """Make the zip's local header and central directory lie about a member's unpacked size."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        offset = archive.getinfo(member).header_offset
    assert data[offset:offset + 4] == b"PK\x03\x04"
    struct.pack_into("<I", data, offset + 22, declared)
    position = data.find(b"PK\x01\x02")
    while position != -1:
        length = struct.unpack_from("<H", data, position + 28)[0]
        if data[position + 46:position + 46 + length] == member.encode():
            struct.pack_into("<I", data, position + 24, declared)
        position = data.find(b"PK\x01\x02", position + 4)
    path.write_bytes(bytes(data))


def test_a_zip_lying_about_its_sizes_is_cut_at_the_declared_size_and_refused(tmp_path):
    path = make_xlsx(tmp_path / "liar.xlsx", [["National ID"], ["1"]])
    padding = b" " * (30 * 1024 * 1024)
    rewrite_zip(path, replace={"xl/worksheets/sheet1.xml": lambda xml: xml.replace(
        b"</sheetData>", padding + b"</sheetData>")})
    declare_size(path, "xl/worksheets/sheet1.xml", 4000)
    assert refusal(path).startswith("The Excel file cannot be read; it may be damaged.")


LAUGHS = b"".join(
    [b'<!DOCTYPE lolz [<!ENTITY lol "lol">']
    + [b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 8)]
    + [b"]>"]
)
SHARED_STRINGS = (b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
                  b'uniqueCount="1"><si><t>&lol7;</t></si></sst>')


@pytest.mark.parametrize("part", ["sharedStrings", "worksheet", "workbook-xxe"])
def test_xml_entity_attacks_are_refused(tmp_path, part):
    """Billion laughs (10 million "lol"s if expanded) or an external entity: defusedxml refuses it."""
    path = make_xlsx(tmp_path / "laughs.xlsx", [["National ID"], ["1"]])
    if part == "sharedStrings":
        rewrite_zip(path, replace={
            "[Content_Types].xml": add_content_type(
                "/xl/sharedStrings.xml",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"),
            "xl/worksheets/sheet1.xml": lambda xml: xml.replace(
                b'<c r="A2" t="inlineStr"><is><t>1</t></is></c>', b'<c r="A2" t="s"><v>0</v></c>'),
        }, add={"xl/sharedStrings.xml": b'<?xml version="1.0"?>' + LAUGHS + SHARED_STRINGS})
    elif part == "worksheet":
        rewrite_zip(path, replace={"xl/worksheets/sheet1.xml": lambda xml: LAUGHS + xml.replace(
            b"<t>1</t>", b"<t>&lol7;</t>")})
    else:
        rewrite_zip(path, replace={"xl/workbook.xml": lambda xml: (
            b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            + re.sub(rb'name="[^"]*"', b'name="&xxe;"', xml, count=1))})
    message = refusal(path)
    assert message.startswith("The Excel file contains unsafe XML (entity declarations) and is refused.")


def test_xlsx_is_refused_when_openpyxl_would_not_use_defusedxml(tmp_path, monkeypatch):
    monkeypatch.setattr(openpyxl, "DEFUSEDXML", False)
    path = make_xlsx(tmp_path / "a.xlsx", [["National ID"], ["1"]])
    assert refusal(path) == "Excel files cannot be read safely on this server. Upload the data as CSV."


def test_macro_enabled_workbooks_are_refused(tmp_path, openpyxl_must_not_open):
    path = make_xlsx(tmp_path / "macro.xlsx", [["National ID"], ["1"]])
    rewrite_zip(path, add={"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0 macro"})
    assert refusal(path).startswith("This workbook contains macros, which are refused.")
    path = make_xlsx(tmp_path / "macro.xlsm", [["National ID"], ["1"]])
    rewrite_zip(path, replace={"[Content_Types].xml": lambda types: types.replace(
        b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
        b"application/vnd.ms-excel.sheet.macroEnabled.main+xml")})
    assert refusal(path).startswith("This workbook contains macros, which are refused.")


def test_other_zip_files_are_refused(tmp_path, openpyxl_must_not_open):
    plain = tmp_path / "plain.csv"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("data.csv", "National ID\n1\n")
    assert refusal(plain) == "This is a zip archive, not an Excel workbook or a CSV file."
    ods = tmp_path / "calc.xlsx"
    with zipfile.ZipFile(ods, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
    assert refusal(ods).startswith("This is an OpenDocument file (.ods).")
    word = make_xlsx(tmp_path / "letter.xlsx", [["x"]])
    rewrite_zip(word, replace={"[Content_Types].xml": lambda types: types.replace(
        b"spreadsheetml.sheet.main+xml", b"wordprocessingml.document.main+xml")})
    assert refusal(word) == "This is a Word document, not a CSV or Excel file."


def test_a_damaged_workbook_is_refused(tmp_path):
    path = make_xlsx(tmp_path / "cut.xlsx", [["National ID"], ["1"]])
    path.write_bytes(path.read_bytes()[:600])
    assert refusal(path) == "The file is a damaged zip archive or Excel workbook."
    path = make_xlsx(tmp_path / "bad.xlsx", [["National ID"], ["1"]])
    rewrite_zip(path, replace={"xl/workbook.xml": b"<not-a-workbook"})
    assert refusal(path).startswith("The Excel file cannot be read; it may be damaged.")


# ---------------------------------------------------------------------------------------------------
# File names


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\Windows\\System32\\evil.csv", "evil.csv"),
        ("C:\\Users\\clerk\\Desktop\\beneficiaries.xlsx", "beneficiaries.xlsx"),
        ("..／..／full-width.csv", "full-width.csv"),
        ("bene\x00ficiaries.csv", "beneficiaries.csv"),
        ("invoice\u202excs.exe", "invoicexcs.exe"),  # right-to-left override: shown as it really is
        ("\u2066list\u2069 of\t\tpeople\n.csv", "list of people .csv"),
        ("  my   file.csv  ", "my file.csv"),
        ('what?<is>"this"|*.csv', "what__is__this___.csv"),
        (".htaccess", "htaccess"),
        ("CON.csv", "_CON.csv"),
        ("", "upload"),
        (None, "upload"),
        ("../", "upload"),
        ("\x00\u202e", "upload"),
        (b"bytes.csv", "bytes.csv"),
    ],
)
def test_sanitise_file_name(name, expected):
    assert sanitise_file_name(name) == expected


def test_a_300_character_name_keeps_its_extension():
    name = sanitise_file_name("é" * 296 + ".xlsx")
    assert len(name) == 100 and name == "é" * 95 + ".xlsx"
    assert len(sanitise_file_name("x" * 300)) == 100


@given(st.one_of(st.text(), st.text(alphabet="./\\ \x00\u202e\u2066abc.csvCON")))
def test_sanitised_names_are_always_safe(name):
    clean = sanitise_file_name(name)
    assert 0 < len(clean) <= 100
    assert not re.search(r"[/\\<>:\"|?*]", clean)
    assert not any(unicodedata.category(ch)[0] == "C" for ch in clean)
    assert clean == " ".join(clean.split()) and not clean.startswith(".") and not clean.endswith(".")
    assert sanitise_file_name(clean) == clean


# ---------------------------------------------------------------------------------------------------
# Properties


@given(st.text())
def test_header_key_is_idempotent(text):
    assert header_key(header_key(text)) == header_key(text)


WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéàüøñ0123456789", min_size=1, max_size=8)


@given(
    words=st.lists(WORD, min_size=1, max_size=5),
    separators=st.lists(st.sampled_from([" ", "_", "-", "  ", " _ ", "\t", "__", "\u00a0", "–"]), min_size=5, max_size=5),
    upper=st.lists(st.booleans(), min_size=5, max_size=5),
    outside=st.sampled_from(["", " ", "  ", "\ufeff", "_"]),
)
def test_header_key_ignores_case_and_separators(words, separators, upper, outside):
    variant = "".join(
        (word.upper() if upper[i] else word.capitalize()) + (separators[i] if i < len(words) - 1 else "")
        for i, word in enumerate(words)
    )
    assert header_key(outside + variant + outside) == header_key(" ".join(words)) == "".join(words)
    assert header_key("".join(word.capitalize() for word in words)) == "".join(words)  # "NationalID"


def _encodable(ch: str, encoding: str) -> bool:
    try:
        ch.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


CP1252_TEXT = "".join(ch for ch in map(chr, range(1, 0x2200)) if _encodable(ch, "cp1252"))
HEADER_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 éüß().", min_size=1,
                      max_size=12).map(str.strip).filter(bool)
UNICODE_CELL = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=15)
CP1252_CELL = st.text(alphabet=st.sampled_from(CP1252_TEXT), max_size=15)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le+bom", "utf-16-be+bom", "cp1252"]


def encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-16-le+bom":
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    if encoding == "utf-16-be+bom":
        return codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    return text.encode(encoding)


@st.composite
def csv_files(draw):
    encoding = draw(st.sampled_from(ENCODINGS))
    headers = draw(st.lists(HEADER_TEXT, min_size=2, max_size=5, unique_by=header_key))
    cell = CP1252_CELL if encoding == "cp1252" else UNICODE_CELL
    rows = draw(st.lists(st.lists(cell, min_size=len(headers), max_size=len(headers)), max_size=8))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    # Python 3.11's writer leaves a lone "\r" unquoted when the line ends are "\n": quote everything then.
    lineterminator, quoting = draw(st.sampled_from([("\r\n", csv.QUOTE_MINIMAL), ("\n", csv.QUOTE_ALL)]))
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=lineterminator, quoting=quoting).writerows([headers, *rows])
    return encoding, delimiter, headers, rows, encode(buffer.getvalue(), encoding)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_file=csv_files(), chunk=st.sampled_from([1, 2, 3, 7, 64, files.CHUNK_BYTES]))
# Found by CI: Windows-1252 "ÂŒ" is valid UTF-8 (C2 8C, a C1 control) and counted as evidence of UTF-8.
@example(csv_file=("cp1252", ",", ["0", "1", "2", "00"], [["ÂŒ", "ÂŒ", "ÂŒ", "\xa0"]],
                   b"0,1,2,00\r\n\xc2\x8c,\xc2\x8c,\xc2\x8c,\xa0\r\n"), chunk=1)
def test_csv_round_trip(csv_file, chunk):
    encoding, delimiter, headers, rows, data = csv_file
    if encoding == "cp1252":
        # Windows-1252 bytes that also happen to be valid UTF-8, or that look like pasted UTF-8 or
        # another code page, are (rightly) not read as Windows-1252: covered by the tests above.
        assume(data.isascii() or not _decodes(data, "utf-8"))
        assume(not files._UTF8_SEQUENCE.search(data) and not files._OTHER_CODEPAGE.search(data))
    columns = [Column(f"col#{i}", (header,)) for i, header in enumerate(headers)]
    with tempfile.TemporaryDirectory() as folder, mock.patch.object(files, "CHUNK_BYTES", chunk):
        path = Path(folder) / "upload.csv"
        path.write_bytes(data)
        table = open_table(path, columns, original_name="upload.csv")
        got = list(table.rows())
    assert table.delimiter == delimiter
    assert table.encoding == {"utf-16-le+bom": "utf-16", "utf-16-be+bom": "utf-16"}.get(
        encoding, "utf-8" if encoding == "cp1252" and data.isascii() else encoding)
    assert table.headers == headers and table.unknown == []
    assert table.mapping == {f"col#{i}": i for i in range(len(headers))}
    # Rows of empty cells are skipped; a cell an export escaped against formulas ("'=...") is read as it was.
    expected = [[files.unescape_formula(cell) for cell in row] for row in rows if any(row)]
    assert [cells for _, cells, _ in got] == expected
    assert all(problem is None for _, _, problem in got)
    numbers = [number for number, _, _ in got]
    assert numbers == sorted(set(numbers)) and all(number >= 2 for number in numbers)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


PREFIXES = [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"PK\x03\x04", b"sep=;\n",
            b"a,b\n", b'"a";"b"\r\n"', b"\xef\xbb\xbfa\tb\n"]


@hypothesis_settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=200))
def test_any_bytes_give_a_table_or_a_file_problem(prefix, body):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(prefix + body)
        try:
            table = open_table(path, [Column("a")], original_name="fuzz.csv")
            for number, cells, problem in table.rows():
                assert isinstance(number, int) and number >= 2
                assert len(cells) == len(table.headers) and all(isinstance(cell, str) for cell in cells)
                assert problem is None or (problem.row == number and problem.message.startswith(f"Row {number}"))
        except FileProblem as problem:
            assert problem.message and "\n" not in problem.message


# ---------------------------------------------------------------------------------------------------
# Throughput: run by hand (QUALITY.md: never timed unit tests)


def measure_throughput(rows: int = 1_000_000, path: str = "/tmp/mizani_files_throughput.csv") -> dict:
    """Write an 8-column CSV of `rows` rows (once), then time open_table + rows() over it."""
    names = ["national_id", "first_name", "last_name", "date_of_birth", "sex", "phone", "village", "amount"]
    if not os.path.exists(path) or os.path.getsize(path) < rows * 40:
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow([name.replace("_", " ").title() for name in names])
            writer.writerows(
                [f"{i:020d}", "Amina", "Mwangi-Otieno", f"19{i % 90 + 10}-0{i % 9 + 1}-1{i % 9}", "MF"[i % 2],
                 f"+2557{i % 10**8:08d}", f"Village {i % 500}", f"{i % 100000}.{i % 100:02d}"]
                for i in range(rows)
            )
    started = time.perf_counter()
    table = open_table(path, [Column(name) for name in names], original_name="throughput.csv", max_rows=rows)
    count = sum(1 for _ in table.rows())
    seconds = time.perf_counter() - started
    return {"rows": count, "seconds": round(seconds, 3), "rows_per_s": round(count / seconds),
            "megabytes": round(os.path.getsize(path) / 1e6, 1)}


if __name__ == "__main__":  # pragma: no cover
    import sys

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    print(measure_throughput(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000))
