"""Reading an uploaded table (CSV or XLSX) safely and fast: the front door of the bulk pipeline.

    table = open_table(path, COLUMNS, original_name=upload.name)   # may raise FileProblem
    for number, cells, problem in table.rows():                     # may raise FileProblem too
        if problem:            # RowProblem: "Row 7: 5 cells where the header has 4."
            report(problem)
            continue
        national_id = cells[table.mapping["national_id"]]

What it guarantees
- Nothing is ever garbled. The encoding is detected (BOM: UTF-8, UTF-16 LE/BE; else UTF-8 if the
  whole file is valid UTF-8; else Windows-1252, unless the file had shown real UTF-8 first) and the
  whole file is checked before a single row is handed out; a file that is none of these, mixes two
  of them, or looks like another Windows code page (Arabic, Cyrillic...) is refused naming the
  first row that cannot be read. The file's kind is decided by its content, never by its name.
- Memory stays bounded: the file is streamed (a csv reader in C over an io.TextIOWrapper); the
  encoding check reads it in 1 MB chunks. XLSX goes through openpyxl in read-only mode, behind a
  size limit, a zip-bomb check, a macro check and defusedxml.
- Every file-level refusal is a FileProblem with a plain sentence for a clerk; every row-level
  problem is a RowProblem yielded with its row, and the rest of the file is still read.

Row numbers are the ones a spreadsheet shows when it opens the file: the header is row 1 (or the
row it is on, when blank rows or Excel's "sep=;" line come first), one row per CSV record (a cell
with a quoted line break is still one row), blank lines counted but not yielded.

`Table.rows()` can itself raise FileProblem part-way (more rows than allowed, a quote that is never
closed, a file changed under our feet): the caller must then discard everything it staged.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import os
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

MAX_FIELD_CHARS = 10_000  # a longer cell is a row problem
CHUNK_BYTES = 1 << 20  # the encoding check reads the file in pieces of this size
SAMPLE_CHARS = 1 << 16  # text read to sniff the delimiter
XLSX_MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024  # and at most 20 x MIZANI_IMPORT_MAX_XLSX_BYTES
XLSX_MAX_RATIO = 200  # real workbooks compress 10-20 times; a bomb about 1000 times
XLSX_MAX_MEMBERS = 10_000
_MEGABYTE = 1 << 20
DELIMITERS = (",", ";", "\t")  # in order of preference when the header line is ambiguous


class FileProblem(Exception):
    """A file-level refusal: nothing in the file is imported. `message` is a plain sentence for a clerk."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Column:
    """A column the importer understands: `name` is ours, `aliases` are other accepted headers
    (openIMIS names, translations); matched with header_key()."""

    name: str
    aliases: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class RowProblem:
    """Why one row cannot be used as it is. `column` is the header of the cell at fault, when one is."""

    row: int
    column: str | None
    message: str  # a whole sentence starting "Row N"

    def __str__(self) -> str:
        return self.message


# ---------------------------------------------------------------------------------------------------
# Names


_INVISIBLE = dict.fromkeys(
    map(ord, "\u00ad\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"),
    None,
)
_SEPARATORS = re.compile(r"[\s_\-\u2010-\u2015\u2212]+")


def header_key(text) -> str:
    """The form headers are matched in: "Date of Birth" == "date_of_birth" == " DATE-OF-BIRTH " ==
    "DateOfBirth".

    Unicode-normalised (NFKC, so full-width letters and composed accents match), casefolded,
    invisible characters (zero-width spaces, BOMs, bidi marks) dropped, and spaces, underscores and
    hyphens dropped (a file's "NationalID" is our national_id)."""
    text = str(text).translate(_INVISIBLE)
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    # Normalised again: a dropped space may leave a combining mark next to a letter it composes with.
    return unicodedata.normalize("NFKC", _SEPARATORS.sub("", text))


_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_PATH_SEPARATORS = re.compile(r"[/\\]")
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_MAX_NAME_CHARS = 100


def sanitise_file_name(name) -> str:
    """An uploaded file's name made safe to store and show: the last path part only, no control,
    format or bidi characters (U+202E...), no characters Windows forbids, whitespace collapsed, no
    leading/trailing dots or spaces, at most 100 characters keeping the extension; never empty."""
    if name is None:
        return "upload"
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    # NFKC first, so that a full-width solidus or a look-alike becomes "/" and is split on below.
    name = unicodedata.normalize("NFKC", str(name))
    name = "".join(
        " " if ch.isspace() else ch
        for ch in name
        if ch.isspace() or unicodedata.category(ch)[0] != "C"  # Cc, Cf (bidi), Cs, Co, Cn
    )
    parts = [part for part in _PATH_SEPARATORS.split(name) if part.strip()]
    name = parts[-1] if parts else ""
    name = _WINDOWS_FORBIDDEN.sub("_", name)
    name = " ".join(name.split()).strip(" .")
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    if stem.upper() in _WINDOWS_RESERVED:
        name = "_" + name
    if len(name) > _MAX_NAME_CHARS:
        if dot and stem and 0 < len(extension) <= 10 and extension.isalnum():
            name = stem[: _MAX_NAME_CHARS - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            name = name[:_MAX_NAME_CHARS].rstrip(" .")
    return name or "upload"


# ---------------------------------------------------------------------------------------------------
# The table


class Table:
    """An opened upload: its headers matched against the importer's columns.

    headers    the header cells as in the file (stripped; trailing blank header cells dropped)
    encoding   "utf-8", "utf-8-sig", "utf-16", "cp1252" or "xlsx"
    delimiter  ",", ";" or "\\t"; None for xlsx
    mapping    our column name -> index in `cells`, for the columns found
    unknown    headers matching no column (the caller decides: refuse or ignore)
    name       the original file name, sanitised (metadata only)
    header_row the row the header is on (1 unless blank rows come first)
    """

    def __init__(self, *, path, kind, headers, encoding, delimiter, mapping, unknown, name,
                 header_row, skip_records, raw_width, max_rows, escaped_formulas=True):
        self.path = path
        # Cells our exports escaped ('=..., '+255...) come back as they were (read only if any is there).
        self._escaped_formulas = escaped_formulas
        self.kind = kind
        self.headers = headers
        self.encoding = encoding
        self.delimiter = delimiter
        self.mapping = mapping
        self.unknown = unknown
        self.name = name
        self.header_row = header_row
        self.max_rows = max_rows
        self._skip_records = skip_records  # CSV records up to and including the header
        self._raw_width = raw_width  # header cells before trailing blank ones were dropped

    def __repr__(self) -> str:
        return f"<Table {self.name!r} {self.encoding} {self.delimiter!r} {len(self.headers)} columns>"

    def rows(self) -> Iterator[tuple[int, list[str], RowProblem | None]]:
        """Yield (row_number, cells, problem) for every non-blank row after the header.

        `cells` always has len(headers) text entries (padded with "" or cut), never stripped.
        `problem` is None for a good row; otherwise a RowProblem the caller reports (the cells are
        then best effort): a CSV row with a different number of cells than the header (extra cells
        that are empty are fine; an XLSX row is never short: a workbook does not store empty cells),
        a value beyond the last header, a cell longer than MAX_FIELD_CHARS, a quote in the middle of
        a CSV cell. Blank rows (every cell "") are skipped but counted in the row numbers.

        Raises FileProblem when the file has more than max_rows data rows or cannot be read on (a
        quote never closed): nothing must then be imported. Each call reads the file again."""
        rows = self._xlsx_rows() if self.kind == "xlsx" else self._csv_rows()
        if self._escaped_formulas:
            return ((number, [unescape_formula(cell) for cell in cells], problem) for number, cells, problem in rows)
        return rows

    # CSV: the hot loop. Per row: a len() check, any(), one max(map(len)) and a comparison.
    def _csv_rows(self):
        width = len(self.headers)
        max_field = MAX_FIELD_CHARS
        number = self.header_row
        limit = self.header_row + self.max_rows  # the last row number allowed, moved on by blank rows
        with open(self.path, "rb") as raw:
            text = io.TextIOWrapper(raw, encoding=self.encoding, newline="")
            reader = csv.reader(text, delimiter=self.delimiter, strict=True)
            try:
                for _ in range(self._skip_records):
                    next(reader)
            except (csv.Error, StopIteration, UnicodeDecodeError) as error:  # the file changed since open_table
                raise FileProblem("The file changed while it was being read; upload it again.") from error
            while True:
                resume = number + 1
                try:
                    for number, cells in enumerate(reader, resume):
                        if len(cells) == width and any(cells) and max(map(len, cells)) <= max_field:
                            if number > limit:
                                raise self._too_many_rows()
                            yield number, cells, None
                        elif not any(cells):
                            limit += 1
                        else:
                            if number > limit:
                                raise self._too_many_rows()
                            cells, problem = self._check_row(number, cells)
                            yield number, cells, problem
                    return
                except csv.Error as error:
                    number += 1
                    if number > limit:
                        raise self._too_many_rows() from error
                    yield number, [""] * width, _csv_row_problem(number, error)
                except UnicodeDecodeError as error:  # checked in open_table; the file changed since
                    raise FileProblem(_not_text_message(number + 1)) from error

    def _xlsx_rows(self):
        width = len(self.headers)
        limit = self.header_row + self.max_rows
        with _open_workbook(self.path) as sheet:
            try:
                values = sheet.iter_rows(min_row=self.header_row + 1, values_only=True)
                for number, row in enumerate(values, self.header_row + 1):
                    cells = [_xlsx_text(value) for value in row]
                    if not any(cells):
                        limit += 1
                        continue
                    if number > limit:
                        raise self._too_many_rows()
                    if len(cells) < width:  # a workbook does not store the empty cells at the end of a row
                        cells += [""] * (width - len(cells))
                    yield number, *self._check_row(number, cells)
            except FileProblem:
                raise
            except Exception as error:
                raise _xlsx_problem(error) from error

    def _check_row(self, number: int, cells: list[str]) -> tuple[list[str], RowProblem | None]:
        """The slow path: a row of the wrong width or with an oversize cell."""
        width = len(self.headers)
        found = len(cells)
        if found < width:
            message = f"Row {number}: {found} {_plural(found, 'cell')} where the header has {width}."
            return cells + [""] * (width - found), RowProblem(number, None, message)
        if found > width:
            extra = cells[width:]
            cells = cells[:width]
            if any(cell.strip() for cell in extra):
                if found <= self._raw_width:  # the header had blank cells there
                    index = width + next(i for i, cell in enumerate(extra) if cell.strip())
                    message = f"Row {number}, column {_column(index)}: a value in a column that has no header."
                else:
                    message = f"Row {number}: {found} {_plural(found, 'cell')} where the header has {width}."
                return cells, RowProblem(number, None, message)
        for index, cell in enumerate(cells):
            if len(cell) > MAX_FIELD_CHARS:
                header = self.headers[index]
                message = (f'Row {number}, column "{_shown(header)}": the cell has {len(cell):,} characters; '
                           f"the limit is {MAX_FIELD_CHARS:,}.")
                return cells, RowProblem(number, header, message)
        return cells, None

    def _too_many_rows(self) -> FileProblem:
        return FileProblem(f"The file has more than {self.max_rows:,} rows; split it into smaller files.")


# ---------------------------------------------------------------------------------------------------
# Opening


def open_table(path, columns: list[Column], *, original_name: str, max_rows: int | None = None) -> Table:
    """Open an uploaded CSV or XLSX file at `path` and match its header against `columns`.

    The kind of file is decided by its content, never by `original_name` (which is only kept,
    sanitised, as metadata). Raises FileProblem for anything that stops the whole file."""
    path = os.fspath(path)
    lookup = _column_lookup(columns)
    name = sanitise_file_name(original_name)
    if max_rows is None:
        max_rows = settings.MIZANI_IMPORT_MAX_ROWS
    size = os.stat(path).st_size
    max_bytes = settings.MIZANI_IMPORT_MAX_BYTES
    if size > max_bytes:
        raise FileProblem(f"The file is {_size(size)}; the limit is {_size(max_bytes)}. Split it into smaller files.")
    if size == 0:
        raise FileProblem("The file is empty.")
    with open(path, "rb") as raw:
        head = raw.read(4096)

    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _open_xlsx(path, size, lookup, columns, name, max_rows)

    encoding = _detect_encoding(path, head)
    with open(path, "rb") as raw:
        sample = io.TextIOWrapper(raw, encoding=encoding, newline="").read(SAMPLE_CHARS)
    delimiter, sep_line = _sniff(sample)

    record = 0
    with open(path, "rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding=encoding, newline=""), delimiter=delimiter, strict=True)
        try:
            if sep_line:
                next(reader)
                record = 1
            for cells in reader:
                record += 1
                if any(cell.strip() for cell in cells):
                    break
            else:
                raise FileProblem("The file is empty: it has no header row.")
        except csv.Error as error:
            problem = _csv_row_problem(record + 1 - sep_line, error)
            raise FileProblem(f"The header cannot be read. {problem.message}") from error
    header_row = record - sep_line
    headers, mapping, unknown = _match_headers(cells, lookup, columns, header_row)
    return Table(path=path, kind="csv", headers=headers, encoding=encoding, delimiter=delimiter,
                 mapping=mapping, unknown=unknown, name=name, header_row=header_row,
                 skip_records=record, raw_width=len(cells), max_rows=max_rows,
                 escaped_formulas=_has_escaped_formulas(path, encoding))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what sites.spreadsheets.safe_cell escapes with "'"
# An apostrophe before a formula's first character anywhere (a literal-led pattern: scanned at memory
# speed); whether it starts a cell is decided cell by cell, once a file has one.
_ESCAPED_FORMULA_BYTES = re.compile(rb"'[=+\-@\t\r]")


def unescape_formula(cell: str) -> str:
    """A cell as it was before an export escaped it: "'+255700000001" -> "+255700000001"."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in FORMULA_STARTS else cell


def _has_escaped_formulas(path, encoding) -> bool:
    """Whether any cell may start with an escaped formula: a scan of the bytes (at disk speed), so
    that the rows of a file without one are not looked at cell by cell. UTF-16 is not scanned."""
    if encoding == "utf-16":
        return True
    with open(path, "rb") as raw:
        tail = b""
        while block := raw.read(1 << 20):
            if _ESCAPED_FORMULA_BYTES.search(tail + block):
                return True
            tail = block[-1:]
    return False


def _column_lookup(columns: list[Column]) -> dict[str, Column]:
    lookup: dict[str, Column] = {}
    for column in columns:
        for text in (column.name, *column.aliases):
            key = header_key(text)
            other = lookup.get(key)
            if other is not None and other is not column:
                raise ValueError(f"Columns {other.name!r} and {column.name!r} both accept the header {text!r}")
            lookup[key] = column
    return lookup


def _match_headers(cells: list, lookup: dict[str, Column], columns: list[Column], header_row: int):
    headers = [str(cell).strip() for cell in cells]
    while headers and not headers[-1]:
        headers.pop()  # Excel leaves empty header cells after the last column it once formatted
    for index, header in enumerate(headers):
        if not header:
            raise FileProblem(
                f"Column {_column(index)} of the header (row {header_row}) is blank. "
                "Give every column a name, or delete the empty column."
            )
        if len(header) > 1000:
            raise FileProblem(f"Column {_column(index)} of the header (row {header_row}) is not a column name "
                              f"({len(header):,} characters). Is row {header_row} the header?")
    seen: dict[str, int] = {}
    mapping: dict[str, int] = {}
    unknown: list[str] = []
    for index, header in enumerate(headers):
        key = header_key(header)
        if key in seen:
            first = seen[key]
            raise FileProblem(
                f'Columns {_column(first)} "{_shown(headers[first])}" and {_column(index)} "{_shown(header)}" have the same '
                "name. Remove or rename one of them."
            )
        seen[key] = index
        column = lookup.get(key)
        if column is None:
            unknown.append(header)
        elif column.name in mapping:
            first = mapping[column.name]
            raise FileProblem(
                f'Columns {_column(first)} "{_shown(headers[first])}" and {_column(index)} "{_shown(header)}" both mean '
                f'"{column.name}". Keep only one of them.'
            )
        else:
            mapping[column.name] = index
    missing = [column for column in columns if column.required and column.name not in mapping]
    if missing:
        described = []
        for column in missing:
            text = f'"{column.name}"'
            if column.aliases:
                text += " (or " + ", ".join(f'"{alias}"' for alias in column.aliases) + ")"
            described.append(text)
        found = ", ".join(f'"{_shown(header)}"' for header in headers[:30])
        if len(headers) > 30:
            found += f" and {len(headers) - 30} more"
        label = "Required column missing" if len(missing) == 1 else "Required columns missing"
        raise FileProblem(f"{label}: {', '.join(described)}. The columns in the file are: {found}.")
    return headers, mapping, unknown


# ---------------------------------------------------------------------------------------------------
# CSV: what kind of file, which encoding, which delimiter


_MAGIC = (
    (b"%PDF", "This is a PDF document, not a CSV or Excel file."),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
     "This is an old Excel 97-2003 workbook (.xls) or a password-protected one, which cannot be read. "
     "Save it as an Excel Workbook (.xlsx) without a password, or as CSV, and upload that."),
    (b"\x1f\x8b", "This is a compressed (gzip) file, not a CSV or Excel file. Unpack it first."),
    (b"Rar!", "This is a RAR archive, not a CSV or Excel file. Unpack it first."),
    (b"7z\xbc\xaf\x27\x1c", "This is a 7-Zip archive, not a CSV or Excel file. Unpack it first."),
    (b"\x89PNG", "This is a picture, not a CSV or Excel file."),
    (b"\xff\xd8\xff", "This is a picture, not a CSV or Excel file."),
    (b"GIF8", "This is a picture, not a CSV or Excel file."),
    (b"{\\rtf", "This is a Word/RTF document, not a CSV or Excel file."),
)
_SAVE_AS = 'Save it from Excel as "CSV UTF-8" (or as an .xlsx workbook) and upload that.'
# The UTF-8 that shows up pasted into Windows-1252 text: Latin-1 letters and symbols (C2/C3 xx, read
# as "Ã©"), Cyrillic (D0/D1 xx), Arabic (D8-DB xx) and typographic punctuation (E2 80 xx, read as
# "â€™"). Limited to these because any wider pattern matches ordinary French text ("à\xa0«").
_UTF8_SEQUENCE = re.compile(rb"\xc2[\xa0-\xbf]|[\xc3\xd0\xd1\xd8-\xdb][\x80-\xbf]|\xe2\x80[\x80-\xbf]")
# Four high letters in a row never occur in Western European text, always in Arabic, Cyrillic,
# Greek or Hebrew text saved with another Windows code page.
_OTHER_CODEPAGE = re.compile(rb"[\xc0-\xd6\xd8-\xf6\xf8-\xff]{4,}")
_MARK = "mizani.bulk.files.mark"
codecs.register_error(_MARK, lambda error: ("\ud800", error.end))  # a lone surrogate never decodes otherwise
_MARKED = re.compile("[\ud800-\udfff]")


def _refuse_by_content(head: bytes) -> None:
    for magic, message in _MAGIC:
        if head.startswith(magic):
            raise FileProblem(message)
    start = head.lstrip()[:2048].lower()
    if start.startswith(b"<"):
        if b"urn:schemas-microsoft-com:office:spreadsheet" in start:
            raise FileProblem("This is an Excel 2003 XML spreadsheet. " + _SAVE_AS)
        if start.startswith((b"<!doctype html", b"<html")) or b"<table" in start:
            raise FileProblem("This is a web page (HTML) with a spreadsheet's name, not a CSV file. " + _SAVE_AS)
        if start.startswith(b"<?xml"):
            raise FileProblem("This is an XML file, not a CSV or Excel file.")


def _binary_problem(head: bytes, *, wide: bool = False) -> FileProblem:
    sample = head[:4096]
    even, odd = sample[0::2], sample[1::2]
    if not wide and len(sample) >= 16 and (even.count(0) > 0.7 * len(even) and odd.count(0) < 0.1 * len(odd)
                              or odd.count(0) > 0.7 * len(odd) and even.count(0) < 0.1 * len(even)):
        return FileProblem("The file looks like UTF-16 text without a byte-order mark, which cannot be read "
                           "safely. " + _SAVE_AS)
    return FileProblem("The file looks like a binary file, not CSV text. Upload a CSV file or an Excel workbook (.xlsx).")


def _detect_encoding(path: str, head: bytes) -> str:
    """Return the encoding the whole file decodes with, or refuse. Reads the file in chunks.

    With a BOM the BOM decides. Without one: UTF-8 if the whole file is UTF-8 (ASCII is). Else
    Windows-1252 ("ANSI" in Excel), unless that reading fails too, or the file had shown real UTF-8
    (UTF8_EVIDENCE non-ASCII characters) before its first non-UTF-8 byte: then it is a UTF-8 file
    with bad bytes, or a mix of both, and it is refused naming the row of the first bad byte."""
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise FileProblem("The file is UTF-32 text, which is not supported. " + _SAVE_AS)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        _refuse_by_content(head)
        encoding = None
    if encoding is not None:
        if _decode_all(path, encoding, head) is not None:
            raise FileProblem(_not_text_message(_marked_row(path, encoding)))
        return encoding
    evidence = _decode_all(path, "utf-8", head)
    if evidence is None:
        return "utf-8"
    try:
        problem = None
        if _decode_all(path, "cp1252", head, check_cp1252=True) is not None:  # one of its 5 undefined bytes
            problem = FileProblem(_not_text_message(_marked_row(path, "cp1252")))
    except FileProblem as refused:  # pasted UTF-8, another code page
        problem = refused
    if problem is None and evidence < UTF8_EVIDENCE:
        return "cp1252"
    if evidence:
        raise FileProblem(_not_text_message(_marked_row(path, "utf-8")))
    raise problem


UTF8_EVIDENCE = 3  # valid non-ASCII UTF-8 characters before a bad byte that make a file UTF-8 with errors
# C1 controls (U+0080-U+009F) are no evidence: no text has them, but Windows-1252 letters read as UTF-8
# make them ("ÂŒ" is C2 8C, which is U+008C).
_NON_ASCII = re.compile("[^\x00-\x9f]")


def _decode_all(path: str, encoding: str, head: bytes, *, check_cp1252: bool = False) -> int | None:
    """Decode the whole file. None when it all decodes; else how many non-ASCII characters (at most
    UTF8_EVIDENCE) decoded before the first error. Refuses NUL characters (a binary file)."""
    wide = encoding == "utf-16"
    decoder = codecs.getincrementaldecoder(encoding)()
    evidence = 0
    with open(path, "rb") as raw:
        while True:
            chunk = raw.read(CHUNK_BYTES)
            final = not chunk
            if not wide and b"\0" in chunk:
                raise _binary_problem(head)
            try:
                text = decoder.decode(chunk, final)
            except UnicodeDecodeError as error:
                if evidence < UTF8_EVIDENCE:
                    evidence += _count_non_ascii(error.object[: error.start].decode(encoding, "ignore"))
                return min(evidence, UTF8_EVIDENCE)
            if wide and "\0" in text:
                raise _binary_problem(head, wide=True)
            if check_cp1252:
                _check_cp1252(path, chunk)
            if evidence < UTF8_EVIDENCE and not text.isascii():
                evidence += _count_non_ascii(text)
            if final:
                return None


def _count_non_ascii(text: str) -> int:
    return sum(1 for _ in itertools.islice(_NON_ASCII.finditer(text), UTF8_EVIDENCE))


# bytes.translate + `in` run at memory speed; the regular expressions above only run on a chunk
# that may match (re would take ~1 s per 100 MB each).
_UTF8_LEADS = (0xC2, 0xC3, 0xD0, 0xD1, 0xD8, 0xD9, 0xDA, 0xDB, 0xE2)
_LEAD_TABLE = bytes(ord("L") if b in _UTF8_LEADS else ord("C") if 0x80 <= b <= 0xBF else ord(".") for b in range(256))
_LETTER_TABLE = bytes(ord("H") if b >= 0xC0 and b not in (0xD7, 0xF7) else ord(".") for b in range(256))


def _check_cp1252(path: str, chunk: bytes) -> None:
    for pattern, table, probe, detail in (
        (_UTF8_SEQUENCE, _LEAD_TABLE, b"LC", "it mixes Windows-1252 and UTF-8 text"),
        (_OTHER_CODEPAGE, _LETTER_TABLE, b"HHHH", "it looks like text in another code page, such as Arabic or Cyrillic"),
    ):
        match = probe in chunk.translate(table) and pattern.search(chunk)
        if match:
            needle = match.group().decode("cp1252")
            raise FileProblem(_not_text_message(_row_containing(path, "cp1252", needle), detail))


def _not_text_message(row: int | None, detail: str | None = None) -> str:
    where = f"row {row} cannot be read" if row else "it cannot be read"
    if detail:
        where += f": {detail}"
    return f"The file is not UTF-8, UTF-16 or Windows-1252 text ({where}). {_SAVE_AS}"


def _marked_row(path: str, encoding: str) -> int | None:
    """The row holding the first undecodable byte (slow path, only when refusing)."""
    return _first_row(path, encoding, lambda cell: _MARKED.search(cell) is not None)


def _row_containing(path: str, encoding: str, needle: str) -> int | None:
    return _first_row(path, encoding, lambda cell: needle in cell)


def _first_row(path: str, encoding: str, bad) -> int | None:
    with open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors=_MARK, newline="")
        delimiter, sep_line = _sniff(text.read(SAMPLE_CHARS))
    with open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors=_MARK, newline="")
        reader = csv.reader(text, delimiter=delimiter)
        number = -sep_line
        while True:
            resume = number + 1
            try:
                for number, cells in enumerate(reader, resume):
                    if any(bad(cell) for cell in cells):
                        return max(number, 1)
                return None
            except csv.Error:
                number += 1


_SEP_LINE = re.compile(r"sep=([,;\t|])(?:\r\n|\r|\n|$)", re.IGNORECASE)


def _sniff(sample: str) -> tuple[str, bool]:
    """(delimiter, whether the first line is Excel's "sep=;" line). The delimiter is the one of
    `,` `;` tab found most often outside quotes on the first non-blank line; a tie goes to comma."""
    match = _SEP_LINE.match(sample)
    if match:
        return match.group(1), True
    start = len(sample) - len(sample.lstrip())
    start = sample.rfind("\n", 0, start) + 1 or sample.rfind("\r", 0, start) + 1
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in sample[start:]:
        if ch == '"':
            quoted = not quoted
        elif not quoted:
            if ch in "\r\n":
                break
            if ch in counts:
                counts[ch] += 1
    return max(DELIMITERS, key=counts.__getitem__), False


def _csv_row_problem(number: int, error: csv.Error) -> RowProblem:
    text = str(error)
    if "field limit" in text:
        raise FileProblem(
            f"Row {number}: a cell is longer than {csv.field_size_limit():,} characters, usually because a quote (\") "
            "opens a cell and is never closed. The file cannot be read safely."
        )
    if "unexpected end of data" in text:
        raise FileProblem(
            f"Row {number}: a quote (\") opens a cell and is never closed, so the rest of the file cannot be read."
        )
    if "expected after" in text:
        return RowProblem(number, None, (
            f'Row {number}: a quote (") in the middle of a cell. A cell with quotes in it must start and end '
            'with a quote, and each quote inside it must be doubled ("").'
        ))
    return RowProblem(number, None, f"Row {number} cannot be read ({text}).")


# ---------------------------------------------------------------------------------------------------
# XLSX


def _open_xlsx(path, size, lookup, columns, name, max_rows) -> Table:
    _inspect_zip(path, size)
    with _open_workbook(path) as sheet:
        try:
            number, cells = _xlsx_header(sheet)
        except FileProblem:
            raise
        except Exception as error:
            raise _xlsx_problem(error) from error
    headers, mapping, unknown = _match_headers(cells, lookup, columns, number)
    return Table(path=path, kind="xlsx", headers=headers, encoding="xlsx", delimiter=None, mapping=mapping,
                 unknown=unknown, name=name, header_row=number, skip_records=0, raw_width=len(cells),
                 max_rows=max_rows)


def _xlsx_header(sheet) -> tuple[int, list[str]]:
    for number, row in enumerate(sheet.iter_rows(values_only=True), 1):
        cells = [_xlsx_text(value) for value in row]
        if any(cell.strip() for cell in cells):
            return number, cells
    raise FileProblem(f'The first sheet of the workbook ("{sheet.title}") is empty: it has no header row.')


_DAMAGED_ZIP = "The file is a damaged zip archive or Excel workbook."


def _inspect_zip(path: str, size: int) -> None:
    """Refuse what must never reach openpyxl: too big, zip bombs, macros, other Office files.

    The sizes in the zip directory are a real bound: Python's zipfile never returns more than a
    member's declared size (and a member that would gives a CRC error)."""
    limit = settings.MIZANI_IMPORT_MAX_XLSX_BYTES
    if size > limit:
        raise FileProblem(f"The Excel file is {_size(size)}; Excel files are limited to {_size(limit)}. "
                          "Save it as CSV (which may be much larger) and upload that.")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            unpacked = sum(member.file_size for member in members)
            cap = min(20 * limit, XLSX_MAX_UNCOMPRESSED_BYTES)
            bomb = len(members) > XLSX_MAX_MEMBERS or unpacked > cap or any(
                member.file_size > _MEGABYTE and member.file_size > XLSX_MAX_RATIO * max(member.compress_size, 1)
                for member in members
            )
            if bomb:
                raise FileProblem(f"The Excel file would unpack to {_size(unpacked)}, far more than a workbook of its "
                                  "size should; it is refused as unsafe. Save the sheet as CSV and upload that.")
            names = {member.filename for member in members}
            if "mimetype" in names and archive.getinfo("mimetype").file_size < 200:
                if b"opendocument" in archive.read("mimetype"):
                    raise FileProblem("This is an OpenDocument file (.ods). " + _SAVE_AS)
            if "[Content_Types].xml" not in names or archive.getinfo("[Content_Types].xml").file_size > _MEGABYTE:
                raise FileProblem("This is a zip archive, not an Excel workbook or a CSV file.")
            types = archive.read("[Content_Types].xml")
    except FileProblem:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, RuntimeError, NotImplementedError, EOFError,
            KeyError) as error:  # RuntimeError: encrypted; NotImplementedError: unknown compression
        raise FileProblem(_DAMAGED_ZIP) from error
    if b"sheet.binary" in types:
        raise FileProblem("This is an Excel Binary Workbook (.xlsb). " + _SAVE_AS)
    if b"macroEnabled" in types or any(member.lower().endswith("vbaproject.bin") for member in names):
        raise FileProblem("This workbook contains macros, which are refused. "
                          "Save it as an Excel Workbook (.xlsx) or as CSV and upload that.")
    if b"spreadsheetml.sheet.main+xml" not in types and b"spreadsheetml.template.main+xml" not in types:
        if b"wordprocessingml" in types:
            raise FileProblem("This is a Word document, not a CSV or Excel file.")
        if b"presentationml" in types:
            raise FileProblem("This is a PowerPoint presentation, not a CSV or Excel file.")
        raise FileProblem("This is a zip archive, not an Excel workbook or a CSV file.")


class _open_workbook:
    """`with _open_workbook(path) as sheet`: the first worksheet of a read-only, values-only workbook."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self):
        import openpyxl

        if not openpyxl.DEFUSEDXML:  # without it openpyxl parses XML with entity expansion
            raise FileProblem("Excel files cannot be read safely on this server. Upload the data as CSV.")
        self.file = open(self.path, "rb")  # a file object: openpyxl would check a path's extension
        try:
            self.workbook = openpyxl.load_workbook(self.file, read_only=True, data_only=True)
            sheets = self.workbook.worksheets
        except Exception as error:
            self.file.close()
            raise _xlsx_problem(error) from error
        if not sheets:
            self.__exit__()
            raise FileProblem("The workbook has no worksheet.")
        sheet = sheets[0]
        sheet.reset_dimensions()  # do not trust the writer's recorded size: read every cell there is
        return sheet

    def __exit__(self, *exc_info):
        try:
            self.workbook.close()
        finally:
            self.file.close()


def _xlsx_problem(error: Exception) -> FileProblem:
    try:
        from defusedxml import DefusedXmlException
    except ImportError:  # pragma: no cover - _open_workbook refuses first
        DefusedXmlException = ()  # noqa: N806
    seen = set()
    while error is not None and id(error) not in seen:  # openpyxl wraps it in a ValueError
        if isinstance(error, DefusedXmlException):
            break
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    if error is not None and isinstance(error, DefusedXmlException):
        return FileProblem("The Excel file contains unsafe XML (entity declarations) and is refused. " + _SAVE_AS)
    return FileProblem("The Excel file cannot be read; it may be damaged. Open it in Excel, save it again as an "
                       "Excel Workbook (.xlsx) or as CSV, and upload that.")


_MIDNIGHT = dt.time(0, 0)


EXCEL_EXACT_LIMIT = 1e15  # Excel keeps 15 significant digits


def _xlsx_text(value) -> str:
    """A cell's value as the text a clerk sees: 1.0 -> "1", 1.5e-05 -> "0.000015", a date -> "2024-03-31"."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return ""
    if kind is float:
        if abs(value) >= EXCEL_EXACT_LIMIT and value == value and abs(value) != float("inf"):
            # Past 15 digits Excel has already replaced the last ones with zeros (an ID typed as a
            # number): shown as Excel shows it, so that the ID's check names the damage.
            mantissa, exponent = f"{value:.14E}".split("E")
            return f"{mantissa.rstrip('0').rstrip('.')}E+{int(exponent)}"
        if value.is_integer():
            return str(int(value))
        text = repr(value)
        if "e" in text and value == value and abs(value) != float("inf"):
            text = format(Decimal(text), "f")
        return text
    if kind is int:
        return str(value)
    if kind is bool:
        return "TRUE" if value else "FALSE"
    if kind is dt.datetime:
        if value.time() == _MIDNIGHT:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if kind is dt.date or kind is dt.time:
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------------------------------
# Small helpers


def _letters(index: int) -> str:
    """Column index 0 -> "A", 26 -> "AA": how spreadsheets name columns."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column(index: int) -> str:
    """Column index 2 -> "3 (C)": the number for a text editor, the letter for a spreadsheet."""
    return f"{index + 1} ({_letters(index)})"


def _shown(text: str, limit: int = 60) -> str:
    """Header text as quoted in a message: one line, no invisible characters, not too long."""
    text = " ".join("".join(ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):,.1f} MB"
    if size >= 1024:
        return f"{size / 1024:,.1f} KB"
    return f"{size:,} bytes"
