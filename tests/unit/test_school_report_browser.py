"""The school-capacity report as a person sees it: opened in headless Chromium (Debian's package, which
`make install` installs when run as root), the chart is in the page's DOM and draws something."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from registry.school_plan import PlanCell
from reports.school_capacity import write_province_report

CHROMIUM = Path("/usr/bin/chromium")


def chromium(tmp_path: Path, *args: str) -> str:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the report tests need Debian's chromium. Install it with "
                    "`make install` (as root) or `sudo apt-get install chromium`.")
    result = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             f"--user-data-dir={tmp_path / 'profile'}", *args],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def report(tmp_path: Path) -> Path:
    cells = [PlanCell("048", f"048{w:02d}", y, demand=15 * w + 3 * (y - 2030), places=90 if w % 3 else 0)
             for w in range(1, 15) for y in range(2030, 2036)]
    html_path, _ = write_province_report(tmp_path / "reports", "048", cells,
                                         generated_at=datetime(2026, 11, 23, tzinfo=UTC), run_id="browser")
    return html_path


def test_the_chart_is_in_the_rendered_dom(report: Path, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", report.as_uri())
    figure = re.search(r'<figure id="demand-vs-places">(.*?)</figure>', dom, re.S)
    assert figure, "the chart's figure is not in the page Chromium rendered"
    svg = figure.group(1)
    assert "<svg" in svg and len(re.findall(r"<(?:path|rect)\b", svg)) >= 12 * 6, "the chart is empty"
    assert "Đà Nẵng" in dom and 'id="shortfalls"' in dom


def test_the_chart_draws_pixels(report: Path, tmp_path: Path) -> None:
    from matplotlib import image

    shot = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1200,900", f"--screenshot={shot}", report.as_uri())
    pixels = image.imread(str(shot))  # RGB(A) floats in 0..1
    rgb = pixels[..., :3]
    assert rgb.shape[0] >= 800 and rgb.shape[1] >= 1100
    coloured = ((rgb.max(axis=2) - rgb.min(axis=2)) > 0.25).mean()  # saturated pixels: the bars and the line
    assert coloured > 0.02, f"the screenshot is almost colourless ({coloured:.3%} coloured pixels)"
