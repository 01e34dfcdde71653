"""ExampleGen's CSV reader: pyarrow's streaming CSV reader with the ``data.csv`` options.

pyarrow reads the delimiter, the quote character, the missing-value markers and a header given in
the YAML itself. What it lacks (another text encoding, comment lines, spaces after the delimiter or
around fields) is done by ``_Text``, a stream between the file and pyarrow that works in chunks of
whole lines, so memory stays bounded whatever the size of the file. With the default options
pyarrow reads the file's bytes directly.

A file that does not read as declared is a ``DataError`` naming the file, the line and the column;
when another option would read it (a ';' delimiter, no header line, a missing-value marker), the
message says which.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import gzip
import io
import re
import zlib
from typing import Iterator, Mapping

import pyarrow as pa
import pyarrow.csv as pa_csv

from components.example_gen import storage
from pipeline.config import CsvConfig
from pipeline.errors import DataError

NULL_VALUES = ["", "NA", "N/A", "NULL", "null", "NaN", "nan"]
# The longest header line read: Python's csv module refuses fields over 131,072 characters anyway.
HEADER_LIMIT = 1 << 20
_CHUNK = 1 << 20
_HEADER_CHUNK = 1 << 16
_DELIMITERS = (",", ";", "\t", "|")
_ENCODING_HINT = "set data.csv.encoding to the encoding the file was written in (e.g. latin-1 or cp1252)"
# 1,234  1.234,5  3,5  1 234: numbers written for a locale
_LOCALE_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:[,. ]\d{3})+(?:[.,]\d+)?|\d+,\d+)$")


class CsvFile:
    """One CSV file as ``data.csv`` says to read it.

    Reading the header (or taking ``data.csv.columns``) and checking the declared columns happens
    when it is made; ``batches`` then streams the rows.

    Args:
        path: A local path or a URL.
        options: The ``data.csv`` section.
        columns: The columns to keep, with the Arrow type each is read as.
        roles: Why a numeric column must hold numbers, per column, for error messages
            ("it is declared under features.numeric").
        batch_rows: ``data.batch_rows``; sets pyarrow's block size.

    Raises:
        DataError: An unreadable or empty first line, or a declared column the file lacks.
    """

    def __init__(self, path: str, options: CsvConfig, columns: dict[str, pa.DataType], roles: Mapping[str, str],
                 batch_rows: int):
        self.path, self.options, self.columns, self.roles = path, options, columns, roles
        self.nulls = NULL_VALUES if options.null_values is None else list(options.null_values)
        self.gzip = storage.is_gzip(path)
        # ~100 bytes a row is typical for tabular data; the block size bounds memory, not the row count
        self.block_size = max(1 << 20, batch_rows * 128)
        self.lines = _LineMap()
        self.header: list[str] = []
        if options.header:
            self.header = self._read_header()
            self._require_header_columns()
        else:
            self.header = list(options.columns)
            missing = [name for name in columns if name not in self.header]
            if missing:
                raise MissingColumns(f"{path}: column(s) {', '.join(missing)} declared in the pipeline YAML (features "
                                     f"/ data.split.key) are not in data.csv.columns ({', '.join(self.header)})",
                                     missing)

    def line_of_row(self, row: int) -> int:
        """The file's line number of data row ``row`` (1-based), comment lines and the header counted."""
        return self.lines.line(row + (1 if self.options.header else 0))

    def where(self, row: int) -> str:
        return f"line {self.line_of_row(row)}"

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Record batches of exactly the kept columns, in their order and of their types.

        Raises:
            DataError: A row that does not parse or a value that does not convert, naming line and
                column; damaged compressed data.
        """
        options = self.options
        read_options = pa_csv.ReadOptions(block_size=self.block_size, use_threads=False,
                                          column_names=None if options.header else list(options.columns))
        parse = pa_csv.ParseOptions(delimiter=options.delimiter,
                                    quote_char=options.quote if options.quote is not None else False)
        convert = pa_csv.ConvertOptions(column_types=self.columns, include_columns=list(self.columns),
                                        null_values=self.nulls, strings_can_be_null=True,
                                        quoted_strings_can_be_null=True)
        rows = 0
        stream = self._stream()
        try:
            reader = pa_csv.open_csv(stream, read_options=read_options, parse_options=parse, convert_options=convert)
            for batch in reader:
                rows += batch.num_rows
                yield batch
        except pa.ArrowInvalid as exc:
            raise self._error(str(exc), rows) from None
        except (OSError, EOFError, zlib.error) as exc:  # pyarrow's or gzip's decompressor: cut short, bad data
            raise self._damaged(exc, rows) from None
        finally:
            stream.close()

    def _damaged(self, exc: Exception, rows: int) -> DataError:
        if not self.gzip:
            return DataError(f"{self.path}: cannot read as CSV text: {exc}")
        after = f" after {rows:,} rows" if rows else ""
        return DataError(f"{self.path}: the compressed data breaks off or is damaged{after} ({exc}); expected a "
                         "complete gzip file (was it cut short while copying or downloading?)")

    # --- reading -------------------------------------------------------------------------------

    def _stream(self):
        """What pyarrow reads: the file's bytes, or ``_Text`` when an option needs it."""
        if _needs_text(self.options):
            return pa.PythonFile(io.BufferedReader(_Text(self, self.lines), buffer_size=_CHUNK), mode="r")
        compression = "gzip" if self.gzip else None
        if storage.is_url(self.path):
            return pa.input_stream(pa.PythonFile(storage.open_binary(self.path), mode="r"), compression=compression)
        return pa.input_stream(self.path, compression=compression)

    def _read_header(self) -> list[str]:
        lines = _LineMap()
        try:
            # small chunks: the header is read without reading (or decompressing) far past it
            with io.BufferedReader(_Text(self, lines, chunk=_HEADER_CHUNK), buffer_size=_HEADER_CHUNK) as text:
                first = text.readline(HEADER_LIMIT * 4 + 1).decode("utf-8", errors="replace")
        except (OSError, EOFError, zlib.error) as exc:
            raise self._damaged(exc, 0) from None
        number = lines.line(1)
        if len(first) > HEADER_LIMIT:
            raise DataError(f"{self.path}: line {number} is longer than {HEADER_LIMIT:,} characters; expected a CSV "
                            "header line of column names (is the file CSV text with line breaks?)")
        if not first.strip():
            only = " apart from comment lines" if lines.dropped else ""
            raise DataError(f"{self.path}: the file is empty{only}; expected a CSV header line and data rows")
        self._first_line, self._first_number = first, number
        try:
            return self._split(first)
        except csv.Error as exc:  # "field larger than field limit (131072)"
            raise DataError(f"{self.path}: line {number} cannot be read as a CSV header ({exc}); expected a line of "
                            "column names") from None

    def _split(self, line: str, delimiter: str | None = None, skip_space: bool = False) -> list[str]:
        quote = self.options.quote
        return next(csv.reader([line], delimiter=delimiter or self.options.delimiter, quotechar=quote or '"',
                               quoting=csv.QUOTE_NONE if quote is None else csv.QUOTE_MINIMAL,
                               skipinitialspace=skip_space), [])

    def _require_header_columns(self) -> None:
        missing = [name for name in self.columns if name not in self.header]
        if missing:
            require_columns(self.path, self.header, self.columns, self._header_hint())

    def _header_hint(self) -> str:
        """Which options would read the first line as the declared columns, or as data."""
        options, line, number = self.options, self._first_line, self._first_number
        if options.comment is None and line.startswith("#"):
            return f"; line {number} starts with '#': if it is a comment, set data.csv.comment: '#'"
        reasons, settings = [], []

        def score(delimiter: str) -> tuple[int, int]:  # declared columns found, fields
            names = [f.strip() for f in self._split(line, delimiter, skip_space=True)]
            return sum(name in names for name in self.columns), len(names)

        delimiter = options.delimiter
        scores = {d: score(d) for d in _DELIMITERS if d != delimiter and d in line}
        best = max(scores, key=scores.get, default=None)
        if best is not None and scores[best][1] > 1 and scores[best] > score(delimiter):
            reasons.append(f"is separated by {_yaml_char(best)} rather than {_yaml_char(delimiter)}")
            settings.append(f"data.csv.delimiter: {_yaml_char(best)}")
            delimiter = best
        fields = self._split(line, delimiter)
        if not (options.skip_initial_space or options.trim_whitespace):
            if any(f != f.rstrip(" \t") for f in fields):
                reasons.append("has spaces around its fields")
                settings.append("data.csv.trim_whitespace: true")
            elif any(f[:1] == " " for f in fields):
                reasons.append("has a space after each delimiter")
                settings.append("data.csv.skip_initial_space: true")
        names = [f.strip() for f in self._split(line, delimiter, skip_space=True)]
        if not set(names) & set(self.columns) and any(_is_number(name) for name in names):
            reasons.append("looks like data, not column names (it holds numbers and none of the declared columns)")
            settings += ["data.csv.header: false", f"data.csv.columns: [...] (its {len(names)} column names in file "
                                                   "order)"]
        if not settings:
            return ""
        return f"; line {number} {_and(reasons)}: set {_and(settings)}"

    # --- errors --------------------------------------------------------------------------------

    def _name(self, index: int) -> str:
        # pyarrow counts the file's columns, not the ones kept
        return self.header[index] if 0 <= index < len(self.header) else f"#{index}"

    def _error(self, message: str, rows: int) -> DataError:
        path = self.path
        parse = re.search(r"Row #(\d+): Expected (\d+) columns, got (\d+)", message)
        if parse:
            row, expected, got = map(int, parse.groups())
            line = self.lines.line(row)
            like = "like the header" if self.options.header else f"like data.csv.columns ({expected} names)"
            return DataError(f"{path}: line {line} has {got} fields; expected {expected} {like}"
                             f"{self._fields_hint(line)}")
        utf8 = re.search(r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to string: invalid UTF8", message)
        if utf8:
            index, row = utf8.groups()
            where = f"line {self.lines.line(int(row))}: " if row else ""
            return DataError(f"{path}: {where}column '{self._name(int(index))}' is not valid UTF-8 text "
                             f"(data.csv.encoding: {self.options.encoding}); {_ENCODING_HINT}")
        conversion = re.search(
            r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to (\w+): invalid value '(.*)'", message)
        if conversion:
            index, row, _, value = conversion.groups()
            name = self._name(int(index))
            line = self.lines.line(int(row)) if row else self._find_line(int(index), value)
            where = f"line {line}: " if line else ""
            shown = value if len(value) <= 60 else f"{value[:60]}... ({len(value):,} characters)"
            role = self.roles.get(name, "it is declared under features.numeric")
            return DataError(f"{path}: {where}column '{name}' has the value '{shown}'; expected a number ({role})"
                             f"{self._number_hint(name, value, line)}")
        if "straddling object" in message:  # a row (or an unclosed quote) longer than the block pyarrow parses
            return DataError(f"{path}: a row after the first {rows:,} rows is too long to parse (over "
                             f"{self.block_size:,} bytes, the CSV reader's block size, set by data.batch_rows); "
                             "expected rows of ordinary length (look for a huge field or a quote that is never closed)")
        return DataError(f"{path}: cannot parse as CSV: {message}")

    def _number_hint(self, name: str, value: str, line: int | None) -> str:
        """What may make ``value`` (as pyarrow shows it: spaces around it removed) read."""
        if value in self.nulls:  # a marker that did not count as one: there were spaces around it
            return ("; it is a missing-value marker with spaces around it: set data.csv.trim_whitespace: true (or "
                    "data.csv.skip_initial_space: true for spaces after the delimiter)")
        if _LOCALE_NUMBER.match(value):
            return ("; numbers with thousands separators or a decimal comma are not read: write them as 1234.5 "
                    "(no separator, a '.' before the decimals)")
        if line == self.lines.line(1) and not self.options.header and value == name:
            return f"; line {line} holds the column names: set data.csv.header: true and remove data.csv.columns"
        if value and len(value) <= 20 and not any(ch.isdigit() for ch in value):  # a marker, not a stray text
            listed = ", ".join(repr(v) for v in self.nulls)
            return f"; if '{value}' marks a missing value, add it to data.csv.null_values (now: [{listed}])"
        return ""

    def _fields_hint(self, line: int) -> str:
        options = self.options
        if options.skip_initial_space or options.trim_whitespace or options.quote is None:
            return ""
        text = self._source_line(line) or ""
        spaced_quote = re.escape(options.delimiter) + r"[ \t]+" + re.escape(options.quote)
        if re.search(spaced_quote, text):
            return (f"; a quoted field after a space ({options.delimiter} {options.quote}...{options.quote}) is split "
                    "at the delimiters inside it: set data.csv.skip_initial_space: true")
        return ""

    def _source_lines(self) -> Iterator[tuple[int, str]]:
        """(file line number, text) of every line the reader sees, options applied (slow path, errors only)."""
        lines = _LineMap()
        with io.TextIOWrapper(io.BufferedReader(_Text(self, lines), buffer_size=_CHUNK), encoding="utf-8",
                              newline="") as text:
            for kept, line in enumerate(text, start=1):
                yield lines.line(kept), line

    def _source_line(self, number: int) -> str | None:
        try:
            for line_number, text in self._source_lines():
                if line_number == number:
                    return text
                if line_number > number:
                    return None
        except (DataError, OSError, EOFError, zlib.error, UnicodeDecodeError):  # a nicety: give up on it
            return None
        return None

    def _find_line(self, column: int, value: str) -> int | None:
        """The line number of the first row whose ``column`` holds ``value`` (slow path, errors only)."""
        if column < 0:
            return None
        try:
            for number, text in self._source_lines():
                row = self._split(text)
                if len(row) > column and row[column].strip() == value:
                    return number
        except (DataError, csv.Error, OSError, EOFError, zlib.error, UnicodeDecodeError):  # a nicety: give up on it
            return None
        return None


class MissingColumns(DataError):
    """A file lacks declared columns (``missing``: their names)."""

    def __init__(self, message: str, missing: list[str]):
        super().__init__(message)
        self.missing = list(missing)


def require_columns(path: str, present: list[str], columns: Mapping[str, object], hint: str = "") -> None:
    """Raises ``MissingColumns`` naming the declared ``columns`` missing from ``present``, the file's columns.

    Args:
        hint: Appended to the message: what would make the file read (``"; line 1 ..."``).
    """
    missing = [name for name in columns if name not in present]
    if missing:
        shown = ", ".join(present[:30]) + (" ..." if len(present) > 30 else "")
        raise MissingColumns(f"{path}: missing column(s) {', '.join(missing)} declared in the pipeline YAML "
                             f"(features / data.split.key); the file has: {shown}{hint}", missing)


def _needs_text(options: CsvConfig) -> bool:
    """Whether pyarrow needs ``_Text`` in front of it (it reads UTF-8 only, and has no comment or space options)."""
    return (codecs.lookup(options.encoding).name not in ("utf-8", "utf-8-sig") or options.comment is not None
            or options.skip_initial_space or options.trim_whitespace)


class _LineMap:
    """The file's line number of each line ``_Text`` passes on: they differ by the comment lines dropped.

    Holds one entry per run of consecutive comment lines, not per line read.
    """

    def __init__(self):
        self.kept = 0
        self.dropped = 0
        self._kept_before: list[int] = []
        self._dropped_by: list[int] = []

    def drop(self, count: int = 1) -> None:
        """``count`` lines dropped after the ``kept`` lines passed on so far."""
        self.dropped += count
        if self._kept_before and self._kept_before[-1] == self.kept:
            self._dropped_by[-1] = self.dropped
        else:
            self._kept_before.append(self.kept)
            self._dropped_by.append(self.dropped)

    def line(self, kept_line: int) -> int:
        """The file's line number of the ``kept_line``-th line passed on (1-based)."""
        index = bisect.bisect_left(self._kept_before, kept_line)  # runs dropped before it
        return kept_line + (self._dropped_by[index - 1] if index else 0)


class _Text(io.RawIOBase):
    """A CSV file's content as UTF-8 text, with what pyarrow lacks done on the way.

    Decodes ``data.csv.encoding`` (a byte-order mark is dropped, as pyarrow does), drops lines that
    start with ``data.csv.comment``, and removes spaces after each delimiter (``skip_initial_space``,
    as Python's csv module) or spaces and tabs around each field (``trim_whitespace``) outside quoted
    values. It works on chunks of whole lines (a quoted value does not span lines: pyarrow's reader is
    set so), so memory stays bounded: a line longer than the CSV reader's block is passed on in
    pieces, and pyarrow then reports it as too long.
    """

    def __init__(self, source: CsvFile, lines: _LineMap, chunk: int = _CHUNK):
        self._source, self._lines, self._chunk = source, lines, chunk
        options = source.options
        self._raw = storage.open_binary(source.path)
        self._bytes = gzip.GzipFile(fileobj=self._raw, mode="rb") if source.gzip else self._raw
        encoding = options.encoding if codecs.lookup(options.encoding).name != "utf-8" else "utf-8-sig"
        self._decoder_encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._comment = (re.compile(f"^{re.escape(options.comment)}[^\n]*(?:\n|\\Z)", re.MULTILINE)
                         if options.comment is not None else None)
        self._spaces = _Spaces(options) if options.skip_initial_space or options.trim_whitespace else None
        self._carry = ""
        self._lines_before = 0  # lines of the file before the carried text
        self._out = memoryview(b"")
        self._done = False
        self._failure: DataError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._out and not self._done:
            self._produce()
        count = min(len(buffer), len(self._out))
        buffer[:count] = self._out[:count]
        self._out = self._out[count:]
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                self._bytes.close()
            finally:
                self._raw.close()
        super().close()

    def _produce(self) -> None:
        if self._failure is not None:
            raise self._failure
        raw = self._bytes.read(self._chunk)
        try:
            text = self._carry + self._decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            # the lines before the bad bytes are passed on first: a header line reads, and pyarrow's
            # rows before them are kept, as when the file ends there
            self._failure = self._decode_error(exc)
            text, raw = self._carry + self._valid_prefix(exc), b""
            text = text[:text.rfind("\n") + 1]  # not the line that breaks off
        if not raw:
            self._done = self._failure is None
            part, self._carry = text, ""
        else:
            cut = text.rfind("\n") + 1
            if cut == 0 and len(text) <= self._source.block_size:
                self._carry = text
                return
            cut = cut or len(text)
            part, self._carry = text[:cut], text[cut:]
        self._lines_before += part.count("\n")
        if self._comment is not None:
            part = self._drop_comments(part)
        else:
            self._lines.kept += part.count("\n")
        if self._spaces is not None:
            part = self._spaces.remove(part)
        self._out = memoryview(part.encode("utf-8"))

    def _drop_comments(self, part: str) -> str:
        kept, start = [], 0
        for match in self._comment.finditer(part):
            piece = part[start:match.start()]
            self._lines.kept += piece.count("\n")
            self._lines.drop()
            kept.append(piece)
            start = match.end()
        piece = part[start:]
        self._lines.kept += piece.count("\n")
        kept.append(piece)
        return "".join(kept)

    def _valid_prefix(self, exc: UnicodeDecodeError) -> str:
        return exc.object[:exc.start].decode(self._decoder_encoding, errors="replace")

    def _decode_error(self, exc: UnicodeDecodeError) -> DataError:
        source = self._source
        before = self._carry + self._valid_prefix(exc)
        line = self._lines_before + before.count("\n") + 1
        partial = before[before.rfind("\n") + 1:]
        column = ""
        if source.header:  # not while the header line itself is read
            try:
                column = f", column '{source._name(max(len(source._split(partial)) - 1, 0))}'"
            except csv.Error:
                pass
        shown = " ".join(f"0x{byte:02x}" for byte in exc.object[exc.start:exc.end])
        return DataError(f"{source.path}: line {line}{column}: the bytes {shown} are not "
                         f"{source.options.encoding} text; {_ENCODING_HINT}")


class _Spaces:
    """Removes the spaces ``skip_initial_space`` or ``trim_whitespace`` ignore from whole lines of
    text, leaving quoted values as they are.

    The text is split at the quote characters, and only the pieces outside quotes are changed, all
    at once (joined by a character the text does not hold), by regular expressions whose
    replacements are plain text: a replacement with groups costs a Python call per field. A line
    with an odd number of quote characters (a quote inside an unquoted value) would shift what is
    inside and what is outside; such a chunk goes through one regular expression matching quoted
    values line by line instead.
    """

    _JOIN = "\x00"

    def __init__(self, options: CsvConfig):
        self.quote = options.quote
        d = re.escape(options.delimiter)
        plain = options.delimiter.replace("\\", "\\\\")
        if options.trim_whitespace:
            space = "[" + "".join(c for c in " \t" if c != options.delimiter) + "]"  # a tab delimiter is no space
            self.outside = [(re.compile(f"{space}*{d}{space}*"), plain),
                            (re.compile(f"^{space}+|{space}+(?=\r?$)", re.MULTILINE), "")]
            slow = f"{space}*({d}){space}*|^{space}+|{space}+(?=\r?$)"
        else:  # as Python's csv module: spaces (not tabs) after a delimiter, and at the start of a line
            self.outside = [(re.compile(f"{d} +"), plain), (re.compile("^ +", re.MULTILINE), "")]
            slow = f"({d}) +|^ +"
        if self.quote is not None:
            q = re.escape(self.quote)
            # group 1 a quoted value (put back), group 2 the delimiter
            self.slow = re.compile(f"({q}[^{q}\n]*{q})|{slow}", re.MULTILINE)

    def remove(self, text: str) -> str:
        if self.quote is None or self.quote not in text:
            return self._outside(text)
        pieces = text.split(self.quote)
        inside = pieces[1::2]
        if self._JOIN in text or "\n" in "".join(inside):  # an odd quote count on some line
            return self.slow.sub(r"\1\2", text)
        pieces[0::2] = self._outside(self._JOIN.join(pieces[0::2])).split(self._JOIN)
        return self.quote.join(pieces)

    def _outside(self, text: str) -> str:
        for pattern, replacement in self.outside:
            text = pattern.sub(replacement, text)
        return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _yaml_char(char: str) -> str:
    return '"\\t"' if char == "\t" else f"'{char}'"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
