"""The HTML report in headless Chromium on a machine WITHOUT CJK fonts: every section is there by
its heading, every chart has data, and Chinese text is drawn with a font that has its glyphs.

Chromium runs with ``FONTCONFIG_FILE`` pointing at a configuration whose only font directory
holds DejaVu Sans (copied from matplotlib's own fonts: no CJK glyph, no "last resort" font), so
the machine's fonts cannot help, whatever it has installed. The page is driven through the
DevTools protocol over ``--remote-debugging-pipe`` (no network port, no extra package):

* a script reads the section headings and, per chart, its ``data-points`` and drawn marks;
* ``CSS.getPlatformFontsForNode`` names, for every element with Chinese text, the fonts that
  drew its glyphs and how many each: the Chinese glyphs must come from the embedded face (the
  only font here that has them), never from DejaVu Sans, which would draw its empty box;
* a screenshot of the page is kept, and the Chinese class table is compared with the same page
  with its ``@font-face`` removed: the pixels must differ.

The same checks on the page without its ``@font-face`` must find the boxes: that is what shows
the checks can fail. The checks run again with the machine's own fonts (on a machine with a CJK
font the embedded face takes it by local name, and is still what draws the Chinese glyphs).
Skipped when Chromium is missing, unless ``CI`` is set.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib
import pytest

from crm_es import CRM
from crm_es.demo.generator import generate_commands
from crm_es.reports.api import Reports
from crm_es.reports.html.fonts import is_cjk
from crm_es.reports.html.page import write_html_report
from tests.helpers.clock import Clock

END = datetime(2026, 6, 30, 12, tzinfo=UTC)
CHARTS = ("chart-monthly", "chart-segment-sizes", "chart-segment-cn-sizes", "chart-rfm-grid",
          "chart-satisfaction", "chart-complaints-sla", "chart-churn", "chart-retention",
          "chart-value-deciles", "chart-pipeline", "chart-goals", "chart-points",
          "chart-care-tasks")  # fmt: skip
HEADINGS = (
    "1. Revenue, orders and new customers by month", "2. At-risk customers worth most",
    "3. Overdue care tasks", "4. Segments", "5. R×F grid", "6. Satisfaction",
    "7. Complaint resolution against the SLA", "8. Churn", "9. Retention by cohort",
    "10. Customer lifetime value", "11. Sales pipeline", "12. Goals of the plan",
    "13. Loyalty points", "14. Care tasks and agenda", "15. Staff KPIs",
)  # fmt: skip
PROBE = """(async () => {
  await document.fonts.ready;
  const sections = [...document.querySelectorAll("section")].map(s => ({
    id: s.id, heading: s.querySelector("h2").textContent,
    noData: [...s.querySelectorAll("p.no-data")].map(p => p.textContent)}));
  const charts = [...document.querySelectorAll("figure.chart")].map(f => {
    const svg = f.querySelector("svg"), box = svg.getBoundingClientRect();
    const marks = svg.querySelectorAll(
      'g[id*="patch_"] path, g[id*="PathCollection"] use, g[id*="line2d_"] path, image');
    return {id: f.id, points: Number(f.dataset.points), marks: marks.length,
            width: box.width, height: box.height};
  });
  const table = [...document.querySelectorAll('#segments table[lang="zh-CN"] tbody')][0];
  const box = table.getBoundingClientRect();
  return {sections, charts, cnTable: {x: box.x, y: box.y + scrollY, width: box.width,
          height: box.height}, height: document.documentElement.scrollHeight};
})()"""


class Env(NamedTuple):
    variables: dict[str, str]
    has_cjk: bool  # may the machine's fonts draw Chinese (then there is no control to run)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed (CI is set, so the browser test must run)")
        pytest.skip("Chromium is not installed (/usr/bin/chromium): the browser test needs it")
    return path


class Browser:
    """Headless Chromium driven over the DevTools pipe (fd 3 in, fd 4 out, NUL-separated JSON)."""

    def __init__(self, profile: Path, env: dict[str, str]) -> None:
        r_cmd, w_cmd = os.pipe()
        r_out, w_out = os.pipe()
        # Out of the way of 3 and 4 before the child moves them there.
        hi_r, hi_w = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in (r_cmd, w_out))
        os.close(r_cmd)
        os.close(w_out)
        move = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
                "os.execv(sys.argv[3], sys.argv[3:])")  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-c", move, str(hi_r), str(hi_w), chromium(), "--headless",
             "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(hi_r, hi_w), env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(hi_r)
        os.close(hi_w)
        self._w, self._r, self._buf, self._id = w_cmd, r_out, b"", 0
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]

    def call(self, method: str, params: dict[str, Any] | None = None, page: bool = False) -> Any:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if page:
            message["sessionId"] = self.session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = os.read(self._r, 1 << 20)
                assert chunk, f"Chromium closed the pipe during {method}"
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                assert "error" not in reply, (method, reply["error"])
                return reply["result"]

    def open(self, page: Path, width: int = 1400) -> dict[str, Any]:
        """Load ``page`` and return what :data:`PROBE` finds once its fonts are ready."""
        metrics = {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics, page=True)
        self.call("Page.navigate", {"url": page.as_uri()}, page=True)
        wait = "new Promise(r => document.readyState === 'complete' ? r() : onload = r)"
        self.call("Runtime.evaluate", {"expression": wait, "awaitPromise": True}, page=True)
        found = self.call("Runtime.evaluate", {"expression": PROBE, "awaitPromise": True,
                                               "returnByValue": True}, page=True)  # fmt: skip
        return dict(found["result"]["value"])

    def glyph_fonts(self) -> list[tuple[str, int, list[dict[str, Any]]]]:
        """(text, Chinese characters in it, fonts that drew it) of every element with Chinese
        text of its own."""
        self.call("DOM.enable", page=True)
        self.call("CSS.enable", page=True)
        root = self.call("DOM.getDocument", {"depth": -1}, page=True)["root"]
        out = []
        for node_id, text in _cjk_elements(root):
            fonts = self.call("CSS.getPlatformFontsForNode", {"nodeId": node_id}, page=True)
            out.append((text, sum(map(is_cjk, map(ord, text))), fonts["fonts"]))
        return out

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> Path:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": True}
        if clip:
            params["clip"] = {**clip, "scale": 1}
        data = self.call("Page.captureScreenshot", params, page=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        os.close(self._w)
        os.close(self._r)
        self.proc.terminate()
        self.proc.wait(timeout=20)


def _cjk_elements(node: dict[str, Any]) -> Iterator[tuple[int, str]]:
    own = "".join(c.get("nodeValue", "") for c in node.get("children", []) if c["nodeType"] == 3)
    if (
        node["nodeType"] == 1
        and node["nodeName"] not in ("STYLE", "TITLE", "HEAD")
        and any(is_cjk(ord(ch)) for ch in own)
    ):
        yield node["nodeId"], own
    for child in node.get("children", []):
        yield from _cjk_elements(child)


@pytest.fixture(scope="module", params=["without CJK fonts", "with this machine's fonts"])
def fonts_env(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Env:
    """Chromium's environment: a fontconfig with DejaVu Sans alone, checked to offer no font
    for Chinese; or the machine's own fonts, whatever they are (on a machine with a CJK font
    the face takes it by its local name, and is still the one that draws)."""
    if request.param != "without CJK fonts":
        return Env(dict(os.environ), has_cjk=True)
    folder = tmp_path_factory.mktemp("fonts")
    source = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for font in source.glob("DejaVuSans*.ttf"):
        shutil.copy(font, folder / font.name)
    conf = folder / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>'
        f"<dir>{folder}</dir><cachedir>{folder / 'cache'}</cachedir></fontconfig>\n"
    )
    env = {**os.environ, "FONTCONFIG_FILE": str(conf)}
    if shutil.which("fc-list"):
        listed = subprocess.run(["fc-list", ":lang=zh"], env=env, capture_output=True, text=True)
        assert listed.stdout.strip() == "", listed.stdout
    return Env(env, has_cjk=False)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The report of a small Chinese demo store, and the same page without its @font-face."""
    folder = tmp_path_factory.mktemp("report")
    with CRM(f"sqlite:///{folder / 'crm.db'}", clock=Clock(END + timedelta(hours=1))) as crm:
        crm.store.set_timezone("Asia/Shanghai")
        for outcome in crm.execute_many(generate_commands(customers=80, years=1, seed=5, end=END)):
            assert not isinstance(outcome, Exception), outcome
        with Reports(crm) as reports:
            page = write_html_report(reports, folder / "crm-report.html", as_of="2026-06-30",
                                     known_at="2026-07-01")  # fmt: skip
    text = page.read_text(encoding="utf-8")
    without = re.sub(r"@font-face \{[^}]*\}", "", text)
    assert without != text
    bare = folder / "without-font.html"
    bare.write_text(without, encoding="utf-8")
    return page, bare


# Families that draw Chinese: the embedded face reports its font's own name, Noto Sans SC; a
# platform CJK font taken by local name (on a machine that has one) reports its own.
CJK_FAMILY = re.compile(
    r"CJK|\bSC\b|Hei|Song|Ming|Kai|Fallback|PingFang|YaHei|Hiragino|Han|WenQuanYi"
)


def _boxes(glyphs: list[tuple[str, int, list[dict[str, Any]]]]) -> list[str]:
    """The texts whose Chinese characters were not all drawn by a font that has them."""
    return [
        text
        for text, chinese, fonts in glyphs
        if sum(f["glyphCount"] for f in fonts if CJK_FAMILY.search(f["familyName"])) < chinese
    ]


def test_every_section_chart_and_chinese_character_renders(
    pages: tuple[Path, Path], fonts_env: Env, tmp_path: Path
) -> None:
    page, bare = pages
    browser = Browser(tmp_path / "profile", fonts_env.variables)
    try:
        found = browser.open(page)
        assert [s["heading"] for s in found["sections"]] == list(HEADINGS)
        assert all(s["noData"] == [] for s in found["sections"]), found["sections"]
        charts = found["charts"]
        assert [c["id"] for c in charts] == list(CHARTS)
        for chart in charts:
            assert chart["points"] > 0 and chart["marks"] > 0, chart
            assert chart["width"] > 400 and chart["height"] > 150, chart
        glyphs = browser.glyph_fonts()
        assert len(glyphs) > 30  # names, classes, regions, chart labels
        assert _boxes(glyphs) == []
        if not fonts_env.has_cjk:  # here only the embedded face can have drawn them
            drew = {f["familyName"] for _, _, fs in glyphs for f in fs if CJK_FAMILY.search(
                f["familyName"])}  # fmt: skip
            assert drew == {"Noto Sans SC"}
            assert all(f["isCustomFont"] for _, _, fs in glyphs for f in fs
                       if f["familyName"] == "Noto Sans SC")  # fmt: skip
        shot = browser.screenshot(tmp_path / "crm-report.png")
        assert shot.stat().st_size > 50_000
        table = browser.screenshot(tmp_path / "cn-table.png", found["cnTable"])

        if fonts_env.has_cjk:
            return
        # The control: the same page without its @font-face draws boxes, and the checks see it.
        found_bare = browser.open(bare)
        boxes = _boxes(browser.glyph_fonts())
        assert "重要价值客户" in boxes and "华东" in boxes
        assert len(boxes) == len(glyphs)  # every Chinese text, in boxes
        bare_table = browser.screenshot(tmp_path / "cn-table-bare.png", found_bare["cnTable"])
        assert table.read_bytes() != bare_table.read_bytes()
    finally:
        browser.close()
