"""The school-capacity report of one province: `<province>.html` (self-contained: an inline SVG chart drawn by
matplotlib, the wards short of places, a summary line) and `<province>.csv` (one row per plan cell)."""

from __future__ import annotations

import csv
import io
import os
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render to SVG only

from jinja2 import Environment, FileSystemLoader, select_autoescape  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import rules  # noqa: E402
from registry.school_plan import PlanCell  # noqa: E402

CHART_WARDS = 12
"""The chart shows at most this many wards, the worst shortfalls first (the table and the CSV have them all)."""
CSV_COLUMNS = ("province", "ward", "entry_year", "demand", "places", "gap", "ratio")
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=select_autoescape(["j2"]),
                         trim_blocks=True, lstrip_blocks=True)


def _ward_order(cells: list[PlanCell]) -> list[str]:
    """Wards by their worst year's gap (largest shortfall first), then by total demand, then by code."""
    worst: dict[str, int] = {}
    demand: dict[str, int] = defaultdict(int)
    for c in cells:
        worst[c.ward_code] = min(worst.get(c.ward_code, c.gap), c.gap)
        demand[c.ward_code] += c.demand
    return sorted(worst, key=lambda w: (worst[w], -demand[w], w))


def chart_svg(cells: list[PlanCell], title: str, *, max_wards: int = CHART_WARDS) -> str:
    """Grouped bars: per ward, one bar of demand per entry year, and the ward's places as a line across the group."""
    wards = _ward_order(cells)[:max_wards]
    years = sorted({c.entry_year for c in cells})
    by_key = {(c.ward_code, c.entry_year): c for c in cells}
    fig = Figure(figsize=(max(8.0, 1.0 + 0.85 * len(wards)), 4.8), layout="constrained")
    ax = fig.add_subplot()
    if not wards:
        ax.text(0.5, 0.5, "no children of these cohorts and no schools", ha="center", va="center")
        ax.set_axis_off()
    else:
        width = 0.8 / len(years)
        colours = matplotlib.colormaps["viridis"].resampled(max(len(years), 2))
        for i, year in enumerate(years):
            xs = [w + (i - (len(years) - 1) / 2) * width for w in range(len(wards))]
            ax.bar(xs, [by_key[(ward, year)].demand if (ward, year) in by_key else 0 for ward in wards],
                   width=width, color=colours(i), label=f"demand {year}")
        places = [max((by_key[(w, y)].places for y in years if (w, y) in by_key), default=0) for w in wards]
        ax.hlines(places, [w - 0.45 for w in range(len(wards))], [w + 0.45 for w in range(len(wards))],
                  colors="#c0392b", linewidths=2.5, label="grade-1 places")
        ax.set_xticks(range(len(wards)), wards, rotation=45 if len(wards) > 8 else 0)
        ax.set_xlabel("ward (largest shortfall first)")
        ax.set_ylabel("children / places")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(axis="y", alpha=0.3)
    ax.set_title(title)
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "school-capacity"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]  # drop the XML declaration and DOCTYPE: the page inlines the element


def _summary(name: str, code: str, cells: list[PlanCell], years: list[int]) -> str:
    if not cells:
        return f"{name} ({code}): no children of these cohorts and no schools on record."
    wards = {c.ward_code for c in cells}
    short = [c for c in cells if c.gap < 0]
    short_wards = {c.ward_code for c in short}
    shortfall = -sum(c.gap for c in short)
    demand, places = sum(c.demand for c in cells), sum(c.places for c in cells)
    return (f"{name} ({code}): {len(short_wards)} of {len(wards)} wards short of grade-1 places in at least one year "
            f"of {years[0]}–{years[-1]}; {shortfall} places missing in all ({len(short)} ward-years); "
            f"demand {demand} against {places} places over the period.")


def _write_atomically(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(content, encoding="utf-8", newline="")
    os.replace(tmp, path)


def cells_csv(cells: list[PlanCell]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in cells:
        writer.writerow([c.province_code, c.ward_code, c.entry_year, c.demand, c.places, c.gap,
                         "" if c.ratio is None else f"{c.ratio:.3f}"])
    return out.getvalue()


def write_province_report(out_dir: Path, province_code: str, cells: list[PlanCell], *, generated_at: datetime,
                          run_id: str) -> tuple[Path, Path]:
    """Write `<out_dir>/<province>.html` and `<out_dir>/<province>.csv` for the province's cells (cells of other
    provinces are ignored); returns both paths. Rewriting is harmless (each file is replaced whole)."""
    if not re.fullmatch(r"[0-9]{3}", province_code):
        raise ValueError(f"province_code: {province_code!r} is not a 3-digit code")
    name = rules.province_name(province_code)
    mine = sorted((c for c in cells if c.province_code == province_code), key=lambda c: (c.ward_code, c.entry_year))
    years = sorted({c.entry_year for c in mine})
    span = f"{years[0]}–{years[-1]}" if years else ""
    wards = _ward_order(mine)
    shown = min(len(wards), CHART_WARDS)
    caption = ("Demand (bars, one per entry year) against grade-1 places (red line) for "
               + (f"the {shown} wards with the largest shortfall of {len(wards)}; the table and the CSV list all."
                  if len(wards) > shown else f"all {len(wards)} wards, largest shortfall first."))
    short_rows = sorted((c for c in mine if c.gap < 0), key=lambda c: (c.gap, c.ward_code, c.entry_year))
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = out_dir / f"{province_code}.html", out_dir / f"{province_code}.csv"
    page = _TEMPLATES.get_template("school_capacity.html.j2").render(
        province_code=province_code, province_name=name, first_year=years[0] if years else "",
        last_year=years[-1] if years else "", summary=_summary(name, province_code, mine, years),
        chart_svg=chart_svg(mine, f"Grade-1 demand and places, {name} {span}"), caption=caption,
        short_rows=short_rows, run_id=run_id, generated_at=generated_at.isoformat(timespec="seconds"),
        csv_name=csv_path.name)
    _write_atomically(html_path, page)
    _write_atomically(csv_path, cells_csv(mine))
    return html_path, csv_path
