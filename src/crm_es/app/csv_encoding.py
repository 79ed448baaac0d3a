"""Which text encoding a CSV file is in: detected, or given and checked, before any row is read.

Excel in China saves "CSV" in GB18030 (a superset of GBK), elsewhere in UTF-8 with a byte order
mark; hand-made files are UTF-8 without one. ``auto`` takes UTF-8 (with or without the mark) when
the whole file decodes as UTF-8, else GB18030 when it decodes as that, else refuses the file
naming the first byte that is not UTF-8. The file is decoded once in full first (about 1 GB/s, a
few percent of an import's time), so that a bad byte near the end is refused before any row is
stored, and that pass also counts the lines for the progress bar and notes whether any NUL
character is there (which the rows then look for, and only then).
"""

from __future__ import annotations

import codecs
import re
import stat
from pathlib import Path
from typing import Final, NamedTuple

from crm_es.domain.errors import CrmError

AUTO: Final = "auto"
_CHUNK: Final = 1 << 20
# Named in the errors as examples of what --encoding takes.
_EXAMPLES: Final = "gb18030, big5, shift_jis, cp1252, latin-1 or utf-16"


class CsvFile(NamedTuple):
    """A CSV file whose text is known to decode: how to open it and what the scan found."""

    path: Path
    encoding: str  # the codec to open it with ("utf-8-sig" reads UTF-8 with or without a BOM)
    lines: int
    has_nul: bool
    note: str | None = None  # why auto chose an encoding other than UTF-8, for the user to check


class _Bad(NamedTuple):
    byte: int
    offset: int
    line: int


def open_csv(path: Path, encoding: str = AUTO) -> CsvFile:
    """``path`` with its encoding: ``auto`` (see the module doc) or a Python codec name."""
    _regular(path)
    if encoding.strip().lower() != AUTO:
        codec = _codec(encoding)
        scanned = _scan(path, codec)
        if isinstance(scanned, _Bad):
            raise CrmError(
                f"{path} line {scanned.line} is not {encoding} (byte 0x{scanned.byte:02x} at "
                f"offset {scanned.offset}); give the file's encoding with --encoding, "
                f"e.g. {_EXAMPLES}, or --encoding auto"
            )
        return CsvFile(path, codec, *scanned)
    scanned = _scan(path, "utf-8-sig")
    if not isinstance(scanned, _Bad):
        return CsvFile(path, "utf-8-sig", *scanned)
    not_utf8 = scanned
    scanned = _scan(path, "gb18030")
    where = f"byte 0x{not_utf8.byte:02x} at offset {not_utf8.offset}, line {not_utf8.line}"
    if not isinstance(scanned, _Bad) and (odd := _private_use(path, "gb18030")) is not None:
        raise CrmError(
            f"{path} is not UTF-8 ({where}), and read as GB18030 line {odd} has characters no "
            f"text uses (private use): it is in another encoding; give it with --encoding, "
            f"e.g. {_EXAMPLES}"
        )
    if not isinstance(scanned, _Bad):
        note = f"reading {path} as GB18030: it is not UTF-8 ({where}); if its text looks wrong, "
        note += "give its encoding with --encoding"
        return CsvFile(path, "gb18030", *scanned, note=note)
    raise CrmError(
        f"{path} is not UTF-8 ({where}) nor GB18030{_bom_hint(path)}; give its encoding with "
        f"--encoding, e.g. {_EXAMPLES}"
    )


def _private_use(path: Path, codec: str) -> int | None:
    """The first line holding a private-use character when ``path`` is read as ``codec``: GB18030
    decodes almost any bytes, and a Big5 or Shift-JIS file read as it comes out as such
    characters, not as text anyone wrote."""
    with path.open(encoding=codec) as f:
        for number, line in enumerate(f, start=1):
            if _PRIVATE_USE.search(line):
                return number
    return None


_PRIVATE_USE: Final = re.compile("[\ue000-\uf8ff]")


def _regular(path: Path) -> None:
    """The file is read twice (decoded, then parsed), which a pipe or a device cannot be, and
    a device such as /dev/zero never ends."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        raise CrmError(f"{path}: cannot be read: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        raise CrmError(f"{path} is not a regular file (a pipe or a device?); save it to a file")


def _codec(name: str) -> str:
    """The codec called ``name``: UTF-8 as "utf-8-sig" so that a byte order mark is no part of
    the first column's name; a name Python does not know, or a codec that does not turn bytes
    into text (base64, rot13), is refused."""
    shown = repr(name[:40] + ("…" if len(name) > 40 else ""))
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        raise CrmError(
            f"--encoding {shown}: unknown encoding; give auto, utf-8 or one of Python's "
            f"codecs, e.g. {_EXAMPLES}"
        ) from None
    if not getattr(info, "_is_text_encoding", True):
        raise CrmError(
            f"--encoding {shown}: not a text encoding; give auto, utf-8 or e.g. {_EXAMPLES}"
        )
    return "utf-8-sig" if info.name == "utf-8" else info.name


def _scan(path: Path, codec: str) -> tuple[int, bool] | _Bad:
    """(lines, whether any NUL) of the file decoded with ``codec``, or its first bad byte."""
    decoder = codecs.getincrementaldecoder(codec)()
    lines, has_nul, offset, last = 0, False, 0, ""
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                held = _held(decoder)
                try:
                    text = decoder.decode(chunk)
                except UnicodeDecodeError:
                    return _bad(held + chunk, offset - len(held), codec, lines)
                offset += len(chunk)
                lines += text.count("\n")
                has_nul = has_nul or "\x00" in text
                last = text[-1:] or last
            held = _held(decoder)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:  # the file ends inside a character
                return _bad(held, offset - len(held), codec, lines)
    except OSError as e:
        raise CrmError(f"{path}: cannot be read: {e.strerror or e}") from None
    return lines + (1 if last not in ("", "\n") else 0), has_nul


def _held(decoder: codecs.IncrementalDecoder) -> bytes:
    """The bytes of a character cut by the end of the last chunk, which the decoder holds."""
    state = decoder.getstate()[0]
    return state if isinstance(state, bytes) else b""


def _bad(data: bytes, offset: int, codec: str, lines: int) -> _Bad:
    """Where in ``data`` (which starts at byte ``offset`` of the file, on line ``lines + 1``)
    the first byte that ``codec`` cannot decode is."""
    try:
        data.decode(codec)
        start = len(data)  # only cut short: the bad "byte" is the end of the file
    except UnicodeDecodeError as e:
        start = e.start
    before = data[:start].decode(codec, errors="replace")
    byte = data[start] if start < len(data) else data[-1] if data else 0
    return _Bad(byte, offset + start, lines + before.count("\n") + 1)


def _bom_hint(path: Path) -> str:
    try:
        with path.open("rb") as f:
            start = f.read(4)
    except OSError:
        return ""
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return " (it starts with a UTF-16 byte order mark: --encoding utf-16)"
    return ""
