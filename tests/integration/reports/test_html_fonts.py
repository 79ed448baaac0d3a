"""The HTML page's embedded CJK font: a subset of Noto Sans SC holding exactly the Chinese
characters of the page, with its copyright and OFL licence, declared first in every font stack
for those characters only, and the same bytes for the same query (the subsetting is
deterministic, not merely cached)."""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

from crm_es import CRM
from crm_es.demo.generator import generate_commands
from crm_es.reports.api import Reports
from crm_es.reports.html import fonts
from crm_es.reports.html.page import render_html
from crm_es.reports.query import ReportQuery
from tests.helpers.clock import Clock

END = datetime(2026, 6, 30, 12, tzinfo=UTC)
AS_OF, KNOWN_AT = "2026-06-30", "2026-07-01T00:00:00Z"


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('fonts') / 'crm.db'}"
    with CRM(url, clock=Clock(END + timedelta(hours=1))) as crm:
        crm.store.set_timezone("Asia/Shanghai")
        for outcome in crm.execute_many(generate_commands(customers=40, years=1, seed=4, end=END)):
            assert not isinstance(outcome, Exception), outcome
        with Reports(crm) as reports:
            query = ReportQuery.at(AS_OF, KNOWN_AT, tz=crm.store.timezone)
            first = render_html(reports, query)
            fonts.subset_woff2.cache_clear()  # the second page subsets again
            assert render_html(reports, query) == first
    return first


def embedded(page: str) -> TTFont:
    match = re.search(r'url\("data:font/woff2;base64,([A-Za-z0-9+/=]+)"\) format\("woff2"\)', page)
    assert match, "no embedded WOFF2 font"
    data = base64.b64decode(match.group(1))
    assert data[:4] == b"wOF2"
    return TTFont(io.BytesIO(data))


def test_the_subset_holds_exactly_the_chinese_characters_of_the_page(page: str) -> None:
    font_face = re.search(r"@font-face \{[^}]*\}", page)
    assert font_face
    text = page.replace(font_face.group(0), "")
    chinese = {ord(ch) for ch in text if "\u4e00" <= ch <= "\u9fff"}
    assert len(chinese) > 50  # segment classes, regions, customer names
    font = embedded(page)
    assert set(font.getBestCmap()) == {ord(ch) for ch in fonts.embedded_characters(text)}
    assert chinese <= set(font.getBestCmap())
    names = {r.nameID: r.toUnicode() for r in font["name"].names}
    assert "Adobe" in names[0] and "SIL Open Font License" in names[13]
    assert names[1] == "Noto Sans SC"
    # Declared for those characters only, tried after the platform's own CJK fonts.
    assert f"unicode-range: {fonts.unicode_range(fonts.embedded_characters(text))};" in page
    assert 'src: local("PingFang SC"), ' in font_face.group(0)


def test_every_font_stack_starts_with_the_embedded_face(page: str) -> None:
    stacks = re.findall(r"font-family: ([^;]+);", page[: page.index("</style>")])
    assert f'font-family: "{fonts.EMBEDDED_FAMILY}"' in page  # the @font-face itself
    for stack in (s for s in stacks if "," in s):
        assert stack.startswith(f'"{fonts.EMBEDDED_FAMILY}", ')
        assert '"Microsoft YaHei"' in stack and stack.endswith("sans-serif")
    assert "font-family" not in page[page.index("<body>") :]  # charts use the style sheet


def test_the_page_stays_small(page: str, tmp_path: Path) -> None:
    size = len(page.encode())
    assert size < 600_000, size
    assert len(re.search(r"base64,([^\"]+)", page).group(1)) < 120_000  # type: ignore[union-attr]
    assert fonts.unicode_range("一丁七") == "U+4E00-4E01, U+4E03"
