"""``crm-es report html``: one self-contained HTML file, checked in headless Chromium.

The store is a small realistic demo (80 customers over a year, fixed end date). The page is opened
in Debian's Chromium with two scripts injected into a COPY of it (the report itself has no
scripts): one at the top of ``<head>`` records errors (uncaught exceptions, failed resource loads,
``console.error``), one runs on ``load`` and writes, for every chart, its size on the page and the
size of its drawn axes into a ``<pre id="__check">`` that ``--dump-dom`` hands back. Chromium's
own console log (``--enable-logging=stderr``) must also be silent. A screenshot is kept in the
test's tmp dir.

Chromium is installed with apt-get when missing (``apt-get update`` first if the plain install
fails); when it still cannot be had, the browser tests fail under ``CI`` and skip otherwise.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crm_es import CRM
from crm_es.cli import main
from crm_es.demo.generator import generate_commands
from crm_es.reports.html.data import store_label

END = datetime(2026, 6, 30, 12, tzinfo=UTC)
AS_OF = "2026-03-31"
KNOWN_AT = "2026-10-01T00:00:00Z"
CHART_IDS = (
    "chart-monthly",
    "chart-segment-sizes",
    "chart-segment-cn-sizes",
    "chart-rfm-grid",
    "chart-satisfaction",
    "chart-complaints-sla",
    "chart-churn",
    "chart-retention",
    "chart-value-deciles",
    "chart-pipeline",
    "chart-goals",
    "chart-points",
    "chart-care-tasks",
)
SECTION_IDS = (
    "monthly",
    "at-risk",
    "overdue-tasks",
    "segments",
    "rfm-grid",
    "satisfaction",
    "complaints",
    "churn",
    "retention",
    "value",
    "pipeline",
    "goals",
    "points",
    "care",
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing may come from the network
)

ERROR_RECORDER = """<script>
window.__errors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__errors.push(t && t !== window
    ? "resource failed: " + (t.src || t.href || t.tagName)
    : "uncaught: " + e.message);
}, true);
window.addEventListener("unhandledrejection", function (e) {
  window.__errors.push("unhandled rejection: " + e.reason);
});
var __consoleError = console.error;
console.error = function () {
  window.__errors.push("console.error: " + Array.prototype.join.call(arguments, " "));
  __consoleError.apply(console, arguments);
};
</script>"""

CHART_PROBE = """<script>
window.addEventListener("load", function () {
  var charts = Array.prototype.map.call(document.querySelectorAll("figure.chart"), function (f) {
    var svg = f.querySelector("svg");
    var rect = svg ? svg.getBoundingClientRect() : {width: 0, height: 0, top: 0};
    var axes = svg ? svg.querySelector('g[id*="axes_"]') : null;
    var box = axes ? axes.getBBox() : {width: 0, height: 0};
    var style = svg ? getComputedStyle(svg) : null;
    return {
      id: f.id, width: rect.width, height: rect.height, top: rect.top + window.scrollY,
      axes_width: box.width, axes_height: box.height,
      visible: !!style && style.display !== "none" && style.visibility !== "hidden"
        && parseFloat(style.opacity) > 0,
      texts: svg ? svg.querySelectorAll("text").length : 0,
      text: svg ? svg.textContent : ""
    };
  });
  var pre = document.createElement("pre");
  pre.id = "__check";
  pre.textContent = JSON.stringify({
    charts: charts, errors: window.__errors, title: document.title,
    height: document.documentElement.scrollHeight
  });
  document.body.appendChild(pre);
});
</script>"""


# --- Chromium ---------------------------------------------------------------------------------

_chromium_problem: str | None = None
_chromium_checked = False


def _install_chromium() -> str | None:
    """Try to install Debian's chromium; returns why it failed (None when it worked)."""
    if shutil.which("apt-get") is None:
        return "no apt-get here (not Debian)"
    if os.geteuid() != 0:
        return "apt-get install needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "chromium"]
    problem = None
    for steps in ([install], [["apt-get", "update"], install]):
        try:
            for step in steps:
                subprocess.run(step, env=env, check=True, capture_output=True, timeout=900)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
            output = getattr(e, "stderr", b"") or b""
            problem = f"{' '.join(e.cmd) if hasattr(e, 'cmd') else 'apt-get'}: {e}; " + (
                output.decode(errors="replace")[-300:] if isinstance(output, bytes) else ""
            )
            continue
        if shutil.which("chromium"):
            return None
    return problem or "apt-get ran but installed no chromium"


def chromium() -> str:
    """Path of the chromium binary, installing it once per session when missing."""
    global _chromium_checked, _chromium_problem
    if not _chromium_checked:
        _chromium_checked = True
        if shutil.which("chromium") is None:
            _chromium_problem = _install_chromium()
    path = shutil.which("chromium")
    if path is None:
        problem = f"Chromium unavailable: {_chromium_problem}"
        if os.environ.get("CI"):
            pytest.fail(f"{problem} (CI is set, so the browser test is mandatory)")
        pytest.skip(problem)
    return path


def run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def probe_page(page: Path, tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    """Open a copy of ``page`` with the recorder and the probe injected; returns the probe's
    findings and the lines Chromium logged from the page's console."""
    text = page.read_text(encoding="utf-8")
    text = text.replace("<head>", "<head>\n" + ERROR_RECORDER, 1)
    text = text.replace("</body>", CHART_PROBE + "\n</body>", 1)
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(text, encoding="utf-8")
    result = run_chromium(
        tmp_path / f"profile-{page.stem}",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,1000",  # the screenshot's width, so the layout is the same
        "--dump-dom",
        probed.as_uri(),
    )
    match = re.search(r'<pre id="__check">(.*?)</pre>', result.stdout, re.S)
    assert match, f"the probe did not run; chromium said:\n{result.stderr[-2000:]}"
    console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(html.unescape(match.group(1))), console


# --- the store and the report -----------------------------------------------------------------


def run(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--db", url, *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('html-store') / 'crm.db'}"
    app = CRM(url)
    try:
        commands = generate_commands(customers=80, years=1, seed=5, end=END)
        failed = [o for o in app.execute_many(commands) if isinstance(o, Exception)]
    finally:
        app.close()
    assert failed == []
    return url


@pytest.fixture(scope="module")
def report(store: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html-out") / "crm-report.html"
    code, stdout, stderr = run(store, "report", "html", "--out", str(out))
    assert code == 0, stderr
    assert json.loads(stdout) == {"out": str(out), "bytes": out.stat().st_size}
    return out


def main_part(page: str) -> str:
    return page[page.index("<main>") : page.index("</main>")]


def test_the_page_has_every_section_chart_and_headline(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert report.stat().st_size < 1_500_000
    for section in SECTION_IDS:
        assert page.count(f'<section id="{section}">') == 1
    for chart in CHART_IDS:
        assert page.count(f'<figure class="chart" id="{chart}"') == 1
    assert page.count("<svg") == len(CHART_IDS)
    for label in ("Customers", "CSAT", "NPS", "Open complaints", "At-risk customers",
                  "Overdue care tasks"):  # fmt: skip
        assert f'<div class="label">{label}</div>' in page
    for meta in ("meta-store", "meta-as-of", "meta-known-at", "meta-time-zone"):
        assert f'id="{meta}"' in page
    # Chinese text is kept as text, for the browser's fonts to draw.
    assert "重要价值客户</text>" in page
    assert "华东" in page


def test_the_page_is_self_contained(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    external = re.compile(r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//""", re.I)
    assert external.findall(page) == []
    assert re.findall(r"""url\(\s*["']?\s*(?:https?:)?//""", page, re.I) == []
    for tag in ("<script", "<link", "<img", "<iframe", "<object", "<embed", "@import"):
        assert tag not in page.lower()
    # SVG ids are unique across the charts (clip paths and markers refer to them by id).
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for ref in re.findall(r'(?:href="#|url\(#)([^")]+)', page):
        assert ref in ids


def test_as_of_and_known_at_are_honoured(store: str, report: Path, tmp_path: Path) -> None:
    out = tmp_path / "march.html"
    code, _, stderr = run(
        store, "report", "html", "--out", str(out), "--as-of", AS_OF, "--known-at", KNOWN_AT
    )
    assert code == 0, stderr
    page = out.read_text(encoding="utf-8")
    assert (
        f'<dd id="meta-as-of"><time datetime="{AS_OF}T23:59:59.999999Z">'
        f"{AS_OF}, end of day (UTC)</time></dd>"
    ) in page
    assert (
        '<dd id="meta-known-at"><time datetime="2026-10-01T00:00:00.000000Z">'
        "2026-10-01 00:00 (UTC)</time></dd>"
    ) in page
    assert f"<title>CRM report as of {AS_OF}</title>" in page
    # Nothing after the as-of month is charted or tabled.
    months = set(re.findall(r"\b(20\d\d-\d\d)\b", main_part(page)))
    assert months and max(months) == AS_OF[:7]
    later = set(re.findall(r"\b(20\d\d-\d\d)\b", main_part(report.read_text(encoding="utf-8"))))
    assert max(later) > AS_OF[:7]

    def customers(text: str) -> int:
        match = re.search(r'<div class="value">([\d,]+)</div><div class="label">Customers<', text)
        assert match
        return int(match.group(1).replace(",", ""))

    assert customers(page) < customers(report.read_text(encoding="utf-8")) == 80


def section_tables(page: str, section_id: str) -> dict[str, list[list[str]]]:
    """The tables of one section by caption: rows of cell texts (header row apart)."""
    start = page.index(f'<section id="{section_id}">')
    part = page[start : page.index("</section>", start)]
    tables: dict[str, list[list[str]]] = {}
    for caption, body in re.findall(r"<caption>(.*?)</caption>.*?<tbody>(.*?)</tbody>", part, re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
        tables[html.unescape(caption)] = [
            [html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows
        ]
    return tables


def test_the_pipeline_section_shows_the_figures_of_report_pipeline(
    store: str, report: Path
) -> None:
    # One definition: the page's figures are those `crm-es report pipeline` gives (the demo
    # store has no event after its end, so both, as of now, see the same opportunities).
    code, stdout, stderr = run(store, "report", "pipeline", "--format", "json")
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["opened"] > 0 and data["overall"]["open"] > 0 and data["lost_reasons"]
    tables = section_tables(report.read_text(encoding="utf-8"), "pipeline")
    overall = dict((row[0], row[1]) for row in tables["Overall"])
    o = data["overall"]
    assert overall["opened by the date"] == f"{data['opened']:,}"
    assert overall["open"] == f"{o['open']:,}"
    assert overall["won"] == f"{o['won']:,}" and overall["lost"] == f"{o['lost']:,}"
    assert overall["weighted forecast (CNY)"] == f"{float(o['weighted_amount']['CNY']):,.2f}"
    assert overall["win rate %"] == f"{o['win_rate']:,.1f}"
    assert [row[:4] for row in tables["By stage"]] == [
        [s["label"], s["stage"], str(s["probability"]), f"{s['open']:,}"] for s in data["by_stage"]
    ]
    assert [row[-1] for row in tables["By stage"]] == [
        "–" if s["conversion"] is None else f"{s['conversion']:,.1f}" for s in data["by_stage"]
    ]
    assert [(row[0], row[1]) for row in tables["Lost reasons"]] == [
        (r["lost_reason"], f"{r['lost']:,}") for r in data["lost_reasons"]
    ]
    assert [row[0] for row in tables["By owner"]] == [w["owner"] for w in data["by_owner"]]
    # The chart plots the open amount and the forecast of every stage that has an open one.
    stages_open = sum(1 for s in data["by_stage"] if s["open"])
    assert f'id="chart-pipeline" data-chart="chart-pipeline" data-points="{2 * stages_open}"' in (
        report.read_text(encoding="utf-8")
    )


def test_the_goals_section_shows_the_figures_of_report_goals(store: str, report: Path) -> None:
    # One definition: the page's goals are those `crm-es report goals` gives as of now.
    code, stdout, stderr = run(store, "report", "goals", "--format", "json")
    assert code == 0, stderr
    goals = json.loads(stdout)["goals"]
    assert [g["goal_id"] for g in goals] == ["G-CSAT", "G-REVENUE-H1", "G-SLA-EAST", "G-WIN-LI"]
    page = report.read_text(encoding="utf-8")
    rows = section_tables(page, "goals")["Goals"]

    def shown(text: str | None) -> str:
        return "–" if text is None else f"{Decimal(text):,}"

    assert [(r[0].split()[0], r[4], r[5], r[6], r[8], r[9]) for r in rows] == [
        (g["goal_id"], g["target"] if g["currency"] is None else f"{g['target']} {g['currency']}",
         shown(g["baseline"]), shown(g["value"]), shown(g["path"]),
         "–" if g["on_track"] is None else ("on track" if g["on_track"] else "behind"))
        for g in goals
    ]  # fmt: skip


def test_every_chart_is_visible_in_chromium_without_console_errors(
    report: Path, tmp_path: Path
) -> None:
    found, console = probe_page(report, tmp_path)
    assert console == []
    assert found["errors"] == []
    assert found["title"].startswith("CRM report as of ")
    charts = {c["id"]: c for c in found["charts"]}
    assert list(charts) == list(CHART_IDS)
    for chart_id, c in charts.items():
        assert c["visible"], chart_id
        assert c["width"] > 400 and c["height"] > 150, (chart_id, c["width"], c["height"])
        assert c["axes_width"] > 100 and c["axes_height"] > 50, chart_id
        assert c["texts"] >= 4, chart_id  # title, axis labels, tick labels
        assert 0 < c["top"] < found["height"], chart_id
    assert "重要价值客户" in charts["chart-segment-cn-sizes"]["text"]
    assert "Champions" in charts["chart-rfm-grid"]["text"]
    assert "SLA" in charts["chart-complaints-sla"]["text"]

    shot = tmp_path / "crm-report.png"
    height = max(5000, int(found["height"]))
    result = run_chromium(
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        f"--window-size=1400,{height}",
        report.as_uri(),
    )
    assert shot.is_file(), result.stderr[-2000:]
    from PIL import Image  # Pillow comes with matplotlib, which the report needs anyway

    with Image.open(shot) as image:
        assert image.size == (1400, height)
        low, high = image.convert("L").getextrema()
        assert high - low > 150  # not a blank page


def test_the_browser_probe_catches_errors_and_hidden_charts(tmp_path: Path) -> None:
    """The harness itself: a script error, a failed resource, console.error and an empty chart
    must all be reported, or the test above would prove nothing."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>broken</title></head><body>"
        '<figure class="chart" id="chart-empty"><svg width="0" height="0"></svg></figure>'
        '<img src="https://example.invalid/x.png">'
        '<script>console.error("bad thing"); throw new Error("boom");</script>'
        "</body></html>",
        encoding="utf-8",
    )
    found, console = probe_page(page, tmp_path)
    assert any("boom" in line for line in console)
    errors = " | ".join(found["errors"])
    assert "uncaught: Uncaught Error: boom" in errors
    assert "console.error: bad thing" in errors
    assert "resource failed: https://example.invalid/x.png" in errors
    assert found["charts"][0]["width"] == 0


def test_the_report_is_written_on_every_store(store_url: str, tmp_path: Path) -> None:
    app = CRM(store_url)
    try:
        list(app.execute_many(generate_commands(customers=15, years=1, seed=3, end=END)))
    finally:
        app.close()
    out = tmp_path / "nested" / "report.html"  # missing folders are created
    code, stdout, stderr = run(store_url, "report", "html", "--out", str(out), "--as-of", AS_OF)
    assert code == 0, stderr
    page = out.read_text(encoding="utf-8")
    assert json.loads(stdout)["bytes"] == len(page.encode())
    # A chart with nothing to show as of the date is a "no data yet" note instead.
    drawn = [chart for chart in CHART_IDS if f'id="{chart}"' in page]
    notes = re.findall(r'<p class="no-data">', page)
    assert "chart-monthly" in drawn and len(drawn) + len(notes) >= len(CHART_IDS)


def test_the_header_never_shows_a_store_password() -> None:
    assert (
        store_label("postgresql://crm:s3cret@db/crm?schema=x")
        == "postgresql://crm:***@db/crm?schema=x"
    )
    assert store_label("sqlite:///crm.db") == "sqlite:///crm.db"
