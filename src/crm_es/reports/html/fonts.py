"""Fonts for the HTML report: a declared CJK font stack and an embedded fallback subset.

Chinese text (segment classes, regions, customer names) stays text, in the tables and in the
charts (SVG ``<text>``), so the browser draws it. Each font stack starts with
:data:`EMBEDDED_FAMILY`, a ``@font-face`` limited by ``unicode-range`` to the CJK characters
of this page, so it is only ever asked for those. Its sources are first the platform's own CJK
fonts by local name (PingFang and Hiragino on Apple, Microsoft YaHei on Windows, Noto / Source
Han Sans and WenQuanYi on Linux), then a subset of Noto Sans SC holding only the page's CJK
characters, inlined as a base64 WOFF2: a reader with a CJK font keeps it, a reader without one
still sees every character instead of "tofu" boxes. The CJK fonts are also declared in the
stack after the Latin ones, for whatever the face cannot serve.

Why first in the stack rather than after the platform fonts: Chromium draws the first text
node of each font size that makes it load a *fallback* web font with the fallback it had before
the font arrived, and never redraws it (seen headless with an inline data: font): the first
Chinese name of each table came out as boxes. A face early in the list, limited to CJK code
points, is loaded before any such text is shaped.

The font file is Noto Sans SC 2.004 (© 2014-2021 Adobe, SIL Open Font License 1.1) from the
``pylopdf-fonts-zh-cn`` package (a dependency of the ``reports`` extra, pinned, so the glyph
data and hence the page bytes never change under a report). The subset keeps the font's name
table, with its copyright and licence, as the OFL asks of a redistributed derivative.

The subset is deterministic: the same characters give the same bytes (sorted input, no
timestamps recalculated), so a report for (as_of, known_at) keeps its bytes. It is cached per
character set: a page rendered twice subsets once.
"""

from __future__ import annotations

import base64
import functools
import html
import io
from collections.abc import Iterable
from typing import Final

import pylopdf_fonts_zh_cn
from fontTools import subset  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

EMBEDDED_FAMILY: Final = "crm-es CJK fallback"
# The platform CJK fonts the face tries by local name (full and PostScript names) before the
# embedded subset.
LOCAL_CJK_FONTS: Final = (
    "PingFang SC", "PingFangSC-Regular", "Hiragino Sans GB", "HiraginoSansGB-W3",
    "Microsoft YaHei", "MicrosoftYaHei", "Noto Sans CJK SC", "NotoSansCJKsc-Regular",
    "Noto Sans SC", "NotoSansSC-Regular", "Source Han Sans SC", "SourceHanSansSC-Regular",
    "WenQuanYi Micro Hei",
)  # fmt: skip
# Code points the face serves: CJK radicals, punctuation, kana and ideographs, compatibility
# ideographs and forms, full-width forms, the supplementary ideograph planes.
CJK_RANGES: Final = (
    (0x2E80, 0x9FFF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x20000, 0x3FFFF),
)  # fmt: skip
# Platform CJK fonts, most common first; the browser picks the first that has a glyph.
CJK_FONTS: Final = (
    "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Noto Sans SC",
    "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
)  # fmt: skip
LATIN_FONTS: Final = (
    "system-ui", "-apple-system", "Segoe UI", "Roboto", "Noto Sans", "Helvetica Neue", "Arial",
)  # fmt: skip
# Charts are laid out by matplotlib with DejaVu Sans metrics: the browser should draw their
# Latin text with it too where it can, so labels fit where matplotlib put them.
CHART_LATIN_FONTS: Final = ("DejaVu Sans", "Helvetica Neue", "Arial")
_GENERIC: Final = frozenset({"system-ui", "-apple-system", "sans-serif", "monospace"})


def font_stack(latin: Iterable[str]) -> str:
    """A CSS ``font-family`` value: the embedded face (CJK only), ``latin``, the CJK fonts,
    ``sans-serif``."""
    names = [EMBEDDED_FAMILY, *latin, *CJK_FONTS]
    quoted = [name if name in _GENERIC else f'"{name}"' for name in names]
    return ", ".join([*quoted, "sans-serif"])


TEXT_FONT_STACK: Final = font_stack(LATIN_FONTS)
CHART_FONT_STACK: Final = font_stack(CHART_LATIN_FONTS)


@functools.cache
def _font_cmap() -> frozenset[int]:
    """The code points Noto Sans SC has a glyph for."""
    font = TTFont(pylopdf_fonts_zh_cn.sans_path(), lazy=True)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


def is_cjk(code_point: int) -> bool:
    return any(low <= code_point <= high for low, high in CJK_RANGES)


def embedded_characters(page: str) -> str:
    """The characters the face must carry for ``page``: every CJK character of its text the
    font has, sorted (the rest is drawn by the Latin fonts of the stack)."""
    covered = _font_cmap()
    used = {cp for cp in map(ord, set(html.unescape(page))) if is_cjk(cp)}
    return "".join(chr(cp) for cp in sorted(used & covered))


def unicode_range(characters: str) -> str:
    """The CSS ``unicode-range`` of exactly ``characters`` (sorted), runs merged."""
    runs: list[list[int]] = []
    for cp in map(ord, characters):
        if runs and runs[-1][1] == cp - 1:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp])
    return ", ".join(f"U+{a:X}" if a == b else f"U+{a:X}-{b:X}" for a, b in runs)


@functools.lru_cache(maxsize=16)
def subset_woff2(characters: str) -> bytes:
    """Noto Sans SC cut down to ``characters``, as WOFF2 bytes (the same for the same text)."""
    options = subset.Options()
    options.name_IDs = ["*"]  # keep the copyright (0) and the licence (13, 14)
    options.name_languages = ["*"]
    options.hinting = False  # browsers rasterise CJK well without it; a third smaller
    options.desubroutinize = True  # compresses better under WOFF2's Brotli
    options.recalc_timestamp = False
    # recalcTimestamp=False: saving must not stamp the current time into the head table.
    font = TTFont(pylopdf_fonts_zh_cn.sans_path(), lazy=True, recalcTimestamp=False)
    try:
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=characters)
        subsetter.subset(font)
        font.flavor = "woff2"  # the subsetter's option names it; saving needs it on the font
        out = io.BytesIO()
        font.save(out, reorderTables=False)
    finally:
        font.close()
    return out.getvalue()


def font_face_css(page: str) -> str:
    """The ``@font-face`` rule of the embedded face for ``page`` ('' when the page has no CJK
    character)."""
    characters = embedded_characters(page)
    if not characters:
        return ""
    data = base64.b64encode(subset_woff2(characters)).decode("ascii")
    local = ", ".join(f'local("{name}")' for name in LOCAL_CJK_FONTS)
    return (
        "/* CJK text: the platform's CJK font, else a subset of Noto Sans SC, (c) 2014-2021 "
        "Adobe, under the SIL Open Font License 1.1 (its name table carries the notice and the "
        "licence). Regular weight only: the browser emboldens it for bold text. */\n"
        f'@font-face {{ font-family: "{EMBEDDED_FAMILY}"; font-style: normal; '
        f"font-weight: 400; font-display: block; unicode-range: {unicode_range(characters)}; "
        f'src: {local}, url("data:font/woff2;base64,{data}") format("woff2"); }}'
    )
