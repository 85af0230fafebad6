"""The AI Olympics leaderboard as one self-contained HTML page.

    html = render(board)          # board: the dict of edgekit.olympics.leaderboard.build()
    Path("leaderboard.html").write_text(html, encoding="utf-8")

The page needs nothing but a browser: no external URL, no CDN, no web font. The plots are inline SVG
drawn here in Python, so the tables and plots work with JavaScript off. Only the page served by
`edgekit olympics serve` (render(board, refresh_s=...)) carries a small inline script, which polls
board.json and reloads the page when the results change.

Team names, reasons and every other string in the board come from submissions and are untrusted:
everything from the data goes through html.escape (text and attribute values alike), ids and class
names built from data are reduced to [A-Za-z0-9_-], and a Content-Security-Policy allows only this
page's own style sheet and script (by hash), so even a missed escape could not run a script.

Tests find things by stable ids and data- attributes:
    section#track-<track>, section#board-<track>-<target>, table#ranking-<track>-<target>
    (rows: tr[data-team][data-rank][data-status][data-mode]), svg#pareto-<track>-<target>.pareto
    (points: g.point[data-team][data-pareto][data-mode][data-status]), #history-<track>,
    #verified[data-count][data-head], time#generated.
"""
from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from datetime import datetime
from html import escape

__all__ = ["render", "render_error", "pareto_front", "board_hash"]

# --- small helpers ---------------------------------------------------------------------------------


def _e(value) -> str:
    """Escape anything for HTML text or a quoted attribute value (quotes included)."""
    return escape("" if value is None else str(value), quote=True)


def _slug(value) -> str:
    """An id/class fragment from untrusted text: only letters, digits, '_' and '-' survive."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(value)).strip("-") or "x"


def _num(value) -> float | None:
    """A finite number, or None: a malformed figure must not break the whole page."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# Only these words become class names; anything else from the data is shown as text only.
_STATUSES = ("ok", "violates", "failed", "invalid")
_MODES = ("measured", "emulated", "simulated")


def _status(entry: dict) -> str:
    return entry.get("status") if entry.get("status") in _STATUSES else "unknown"


def _mode(entry: dict) -> str:
    return entry.get("mode") if entry.get("mode") in _MODES else "unknown"


def _mode_tag(mode: str) -> str:
    """The label that goes after every figure: was it measured on the board, emulated or simulated?"""
    short = {"measured": "meas", "emulated": "emu", "simulated": "sim"}.get(mode, "?")
    return f' <abbr class="mode mode-{mode}" title="{mode}">{short}</abbr>'


def _fixed(value, fmt=lambda v: f"{v:.3f}") -> str:
    """A number formatted with fmt, or a dash when the figure is missing or not a number."""
    v = _num(value)
    return "–" if v is None else fmt(v)


def _fmt_ms(ms: float) -> str:
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 0.1:
        return f"{ms:.2f}"
    return f"{ms:.3g}"


def _fmt_bytes(n: float) -> str:
    # Decimal kB/MB, like the constraints in the track files (flash_bytes = 1000000 is "1.0 MB").
    if n >= 1e6:
        return f"{n / 1e6:.2f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.1f} kB"
    return f"{n:.0f} B"


def _parse_time(text) -> datetime | None:
    # fromisoformat only accepts a trailing "Z" from Python 3.11; the contract writes UTC as "Z".
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else None  # naive and aware times cannot be compared; treat naive as unknown


def board_hash(board: dict) -> str:
    """A fingerprint of the results, leaving out the "generated" stamp.

    The live page reloads when this changes. "generated" is left out because the core stamps every
    build with the current time, and the page would otherwise reload on every poll.
    """
    content = {k: v for k, v in board.items() if k != "generated"}
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- Pareto front ---------------------------------------------------------------------------------


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (latency_ms, metric) points, which are Pareto-optimal (lower latency and higher metric win).

    A point is dominated when another is at least as fast and at least as accurate, and strictly
    better in one of the two. Identical points do not dominate each other, so both stay on the front.
    O(n^2), which is clearer than the sorted sweep and fast enough for a class's worth of teams.
    """
    front = []
    for i, (lat, met) in enumerate(points):
        dominated = any(
            lat2 <= lat and met2 >= met and (lat2 < lat or met2 > met)
            for j, (lat2, met2) in enumerate(points) if j != i)
        front.append(not dominated)
    return front


# --- the ranking table ----------------------------------------------------------------------------


def _ordered(ranking: list) -> list[dict]:
    """Ranked entries by rank, then the unranked ones in their given order.

    The core already sends them in this order; sorting again (stable) keeps the page right even if
    the list arrives shuffled.
    """
    entries = [e for e in ranking if isinstance(e, dict)]
    return sorted(entries, key=lambda e: (_num(e.get("rank")) is None, _num(e.get("rank")) or 0))


def _figure_cell(value, text: str, mode: str, over: bool = False) -> str:
    if value is None:
        return '<td class="num na">–</td>'
    cls = "num over" if over else "num"
    title = ' title="above this board\'s limit"' if over else ""
    return f'<td class="{cls}"{title}>{text}{_mode_tag(mode)}</td>'


def _ranking_table(tid: str, board: dict, metric: str) -> str:
    limits = board.get("constraints") or {}
    lim_lat, lim_flash, lim_ram = (_num(limits.get(k)) for k in ("latency_ms", "flash_bytes", "ram_bytes"))
    rows = []
    for e in _ordered(board.get("ranking") or []):
        status, mode = _status(e), _mode(e)
        rank = _num(e.get("rank"))
        score, value = _num(e.get("score")), _num(e.get("metric_value"))
        lat, flash, ram, energy = (_num(e.get(k)) for k in ("latency_ms", "flash_bytes", "ram_bytes", "energy_mj"))
        techniques = e.get("techniques") if isinstance(e.get("techniques"), list) else []
        team_title = f' title="{_e("; ".join(map(str, techniques)))}"' if techniques else ""
        rank_attr = str(int(rank)) if rank is not None else ""
        cells = [
            f'<td class="num rank">{rank_attr or "–"}</td>',
            f'<th scope="row" class="team"{team_title}>{_e(e.get("team"))}</th>',
            f'<td class="num score">{_fixed(score)}</td>',
            _figure_cell(value, "" if value is None else f"{value:.3f}", mode),
            _figure_cell(lat, "" if lat is None else _fmt_ms(lat), mode,
                         over=lat is not None and lim_lat is not None and lat > lim_lat),
            _figure_cell(flash, "" if flash is None else _fmt_bytes(flash), mode,
                         over=flash is not None and lim_flash is not None and flash > lim_flash),
            _figure_cell(ram, "" if ram is None else _fmt_bytes(ram), mode,
                         over=ram is not None and lim_ram is not None and ram > lim_ram),
            _figure_cell(energy, "" if energy is None else f"{energy:.3g}", mode),
            f'<td class="status status-{status}">{_e(e.get("status"))}</td>',
            f'<td class="reason">{_e(e.get("reason") or "")}</td>',
        ]
        rows.append(f'<tr class="status-{status}" data-team="{_e(e.get("team"))}" data-rank="{rank_attr}" '
                    f'data-status="{status}" data-mode="{mode}">' + "".join(cells) + "</tr>")
    if not rows:
        rows.append('<tr><td colspan="10" class="empty">No results for this board yet.</td></tr>')
    metric_name = "AUC" if metric == "auc" else ("accuracy" if metric == "accuracy" else _e(metric))
    head = ("<tr><th scope=\"col\">Rank</th><th scope=\"col\">Team</th><th scope=\"col\">Score</th>"
            f"<th scope=\"col\">{metric_name}</th><th scope=\"col\">Latency (ms)</th><th scope=\"col\">Flash</th>"
            "<th scope=\"col\">RAM</th><th scope=\"col\">Energy (mJ)</th><th scope=\"col\">Status</th>"
            "<th scope=\"col\">Reason</th></tr>")
    return (f'<table id="ranking-{tid}" class="ranking"><caption>Ranking on {_e(board.get("board") or board.get("target"))}'
            f"</caption><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")


# --- the accuracy-versus-latency plot -------------------------------------------------------------

_W, _H = 640, 360                      # the plot's viewBox
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 20, 16, 46


def _log_ticks(lo: float, hi: float) -> list[float]:
    return [10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]


def _pareto_plot(tid: str, board: dict, metric: str) -> str:
    """Accuracy (or AUC) against latency on a log axis; Pareto-optimal ranked entries joined.

    Only ranked ("ok") entries compete for the front: an entry that breaks a board's limits is not a
    valid deployment there, so it is drawn (grey cross) but never on the front. Failed entries have no
    figures and are not drawn.
    """
    metric_name = "AUC" if metric == "auc" else "accuracy"
    pts = []
    for e in _ordered(board.get("ranking") or []):
        lat, met = _num(e.get("latency_ms")), _num(e.get("metric_value"))
        if lat is not None and lat > 0 and met is not None and _status(e) in ("ok", "violates"):
            pts.append({"e": e, "lat": lat, "met": met, "status": _status(e), "mode": _mode(e)})
    ranked = [p for p in pts if p["status"] == "ok"]
    for p, on_front in zip(ranked, pareto_front([(p["lat"], p["met"]) for p in ranked])):
        p["pareto"] = on_front
    not_drawn = len(board.get("ranking") or []) - len(pts)

    limit = _num((board.get("constraints") or {}).get("latency_ms"))
    lats = [p["lat"] for p in pts] + ([limit] if limit and limit > 0 else [])
    mets = [p["met"] for p in pts]
    # x: whole decades around every point and the latency limit; y: twentieths around every point,
    # with a little room below the lowest so its marker is not cut by the axis.
    lo_x = 10.0 ** math.floor(math.log10(min(lats))) if lats else 0.1
    hi_x = 10.0 ** math.ceil(math.log10(max(lats))) if lats else 100.0
    if hi_x <= lo_x:
        hi_x = lo_x * 10
    lo_y = max(0.0, math.floor((min(mets) - 0.01) * 20) / 20) if mets else 0.0
    hi_y = max(1.0, math.ceil(max(mets) * 20) / 20) if mets else 1.0

    def x(lat):
        f = (math.log10(lat) - math.log10(lo_x)) / (math.log10(hi_x) - math.log10(lo_x))
        return _LEFT + f * (_W - _LEFT - _RIGHT)

    def y(met):
        return _TOP + (hi_y - met) / (hi_y - lo_y) * (_H - _TOP - _BOTTOM)

    out = []
    # axes, grid and tick labels
    for t in _log_ticks(lo_x, hi_x):
        out.append(f'<line class="grid" x1="{x(t):.1f}" y1="{_TOP}" x2="{x(t):.1f}" y2="{_H - _BOTTOM}"/>'
                   f'<text class="tick" x="{x(t):.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle">{t:g} ms</text>')
    span = hi_y - lo_y
    step = 0.02 if span <= 0.15 else 0.05 if span <= 0.4 else 0.1 if span <= 1 else 0.25 * math.ceil(span)
    k = math.ceil(lo_y / step - 1e-9)  # ticks on whole multiples of the step (0.1, 0.2, ... not 0.05, 0.15)
    while k * step <= hi_y + 1e-9:
        v = round(k * step, 6)
        out.append(f'<line class="grid" x1="{_LEFT}" y1="{y(v):.1f}" x2="{_W - _RIGHT}" y2="{y(v):.1f}"/>'
                   f'<text class="tick" x="{_LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        k += 1
    out.append(f'<text class="axis-label" x="{(_LEFT + _W - _RIGHT) / 2:.0f}" y="{_H - 8}" text-anchor="middle">'
               "latency per inference (ms, log scale)</text>"
               f'<text class="axis-label" transform="rotate(-90)" x="{-(_TOP + _H - _BOTTOM) / 2:.0f}" y="14" '
               f'text-anchor="middle">{metric_name}</text>')
    if limit and limit > 0:  # labelled at the bottom, where accurate models rarely are
        out.append(f'<line class="limit" x1="{x(limit):.1f}" y1="{_TOP}" x2="{x(limit):.1f}" y2="{_H - _BOTTOM}"/>'
                   f'<text class="limit-label" x="{x(limit) - 4:.1f}" y="{_H - _BOTTOM - 6}" text-anchor="end">'
                   f"limit {limit:g} ms</text>")
    # the front, joined from fastest to most accurate
    front = sorted((p for p in ranked if p["pareto"]), key=lambda p: (p["lat"], p["met"]))
    if len(front) > 1:
        coords = " ".join(f'{x(p["lat"]):.1f},{y(p["met"]):.1f}' for p in front)
        out.append(f'<polyline class="front" points="{coords}"/>')
    place_on_front = {id(q): i for i, q in enumerate(front)}
    # the points: filled when measured, hollow when simulated; crosses for entries over a limit
    for p in pts:
        e, cx, cy = p["e"], x(p["lat"]), y(p["met"])
        on_front = p.get("pareto", False)
        tip = (f'{e.get("team")}: {metric_name} {p["met"]:.3f}, {_fmt_ms(p["lat"])} ms, {p["mode"]}'
               + (", Pareto-optimal" if on_front else "") + (f' (over a limit: {e.get("reason")})'
                                                            if p["status"] == "violates" else ""))
        if p["status"] == "violates":
            mark = (f'<path class="mark" d="M{cx - 5:.1f},{cy - 5:.1f}L{cx + 5:.1f},{cy + 5:.1f}'
                    f'M{cx - 5:.1f},{cy + 5:.1f}L{cx + 5:.1f},{cy - 5:.1f}"/>')
        else:
            mark = f'<circle class="mark" cx="{cx:.1f}" cy="{cy:.1f}" r="{6 if on_front else 4.5}"/>'
        # Labels alternate above and below along the front, so neighbouring points' names do not overlap.
        below = on_front and place_on_front[id(p)] % 2 == 1
        label = (f'<text class="label" x="{cx + 8:.1f}" y="{cy + 16 if below else cy - 8:.1f}">{_e(e.get("team"))}</text>'
                 if on_front else "")
        cls = f'point {p["mode"]} status-{p["status"]}' + (" pareto-optimal" if on_front else "")
        out.append(f'<g class="{cls}" data-team="{_e(e.get("team"))}" data-pareto="{str(on_front).lower()}" '
                   f'data-mode="{p["mode"]}" data-status="{p["status"]}" tabindex="0">'
                   f"<title>{_e(tip)}</title>{mark}{label}</g>")
    if not pts:
        out.append(f'<text class="empty" x="{_W / 2:.0f}" y="{_H / 2:.0f}" text-anchor="middle">nothing to plot yet</text>')

    title = f'{metric_name} versus latency on {board.get("board") or board.get("target")}'
    note = f" {not_drawn} entr{'y' if not_drawn == 1 else 'ies'} without figures not drawn." if not_drawn else ""
    return (f'<figure class="plot"><svg id="pareto-{tid}" class="pareto" viewBox="0 0 {_W} {_H}" role="img" '
            f'aria-labelledby="pareto-{tid}-title" xmlns="http://www.w3.org/2000/svg">'
            f'<title id="pareto-{tid}-title">{_e(title)}</title>{"".join(out)}</svg>'
            '<figcaption>Pareto-optimal entries (no other ranked entry is both faster and more accurate) are '
            'large, orange, labelled and joined. Filled: measured on the board or emulated; hollow: simulated. '
            f'Crosses: over a limit of this board, not ranked. Hover or focus a point for its team.{_e(note)}'
            "</figcaption></figure>")


# --- each team's history --------------------------------------------------------------------------

_PALETTE = ("#1b9e77", "#7570b3", "#d95f02", "#e7298a", "#66a61e", "#a6761d")  # one colour per board


def _history(tid: str, history: dict, targets: list[str]) -> str:
    """Per team, its score over time on each board: a small line chart and the same points as a table."""
    if not isinstance(history, dict) or not history:
        return f'<section id="history-{tid}" class="history"><h3>History</h3><p>No history yet.</p></section>'
    colour = {t: _PALETTE[i % len(_PALETTE)] for i, t in enumerate(targets)}
    # One time scale for all teams, so their charts line up.
    all_times = [_parse_time(p.get("time")) for pts in history.values() if isinstance(pts, list)
                 for p in pts if isinstance(p, dict)]
    known = [t for t in all_times if t is not None]
    t0 = min(known).timestamp() if known else 0.0
    t1 = max(known).timestamp() if known else 1.0
    w, h, pad = 260, 84, 8
    teams = []
    for team, points in history.items():
        points = [p for p in points if isinstance(p, dict)] if isinstance(points, list) else []
        by_target: dict[str, list] = {}
        for i, p in enumerate(points):
            by_target.setdefault(str(p.get("target")), []).append((i, p))
        lines = []
        for target, tpts in by_target.items():
            xy = []
            for i, p in tpts:
                score, when = _num(p.get("score")), _parse_time(p.get("time"))
                if score is None:
                    continue
                # Without a readable time the points keep their order, spread evenly.
                f = ((when.timestamp() - t0) / (t1 - t0) if when and t1 > t0
                     else (0.5 if when else i / max(1, len(points) - 1)))
                xy.append((pad + f * (w - 2 * pad), pad + (1 - min(max(score, 0), 1)) * (h - 2 * pad), p, score))
            xy.sort(key=lambda q: q[0])
            c = colour.get(target, "#555")
            if len(xy) > 1:
                lines.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="'
                             + " ".join(f"{a:.1f},{b:.1f}" for a, b, _, _ in xy) + '"/>')
            for a, b, p, score in xy:
                lines.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{c}"><title>'
                             f'{_e(target)} {_e(p.get("time"))}: score {score:.3f}</title></circle>')
        rows = "".join(
            f'<tr><td>{_e(p.get("time"))}</td><td>{_e(p.get("target"))}</td>'
            f'<td class="num">{_fixed(p.get("score"))}</td><td class="num">{_fixed(p.get("metric_value"))}</td>'
            f'<td class="num">{_fixed(p.get("latency_ms"), _fmt_ms)}</td></tr>'
            for p in points)
        teams.append(
            f'<div class="team-history" data-team="{_e(team)}"><h4>{_e(team)}</h4>'
            f'<svg class="spark" viewBox="0 0 {w} {h}" role="img" aria-label="score over time of {_e(team)}" '
            f'xmlns="http://www.w3.org/2000/svg"><rect class="frame" x="0.5" y="0.5" width="{w - 1}" height="{h - 1}"/>'
            f'{"".join(lines)}</svg>'
            f'<details><summary>{len(points)} result{"" if len(points) == 1 else "s"}</summary>'
            '<table class="history-table"><thead><tr><th scope="col">Time</th><th scope="col">Board</th>'
            '<th scope="col">Score</th><th scope="col">Metric</th><th scope="col">Latency (ms)</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></details></div>")
    legend = "".join(f'<li><span class="swatch swatch-{i % len(_PALETTE)}"></span>{_e(t)}</li>'
                     for i, t in enumerate(targets))
    return (f'<section id="history-{tid}" class="history"><h3>History</h3>'
            f'<p>Score over time (0 to 1) on each board.</p><ul class="legend">{legend}</ul>'
            f'<div class="teams">{"".join(teams)}</div></section>')


# --- the page -------------------------------------------------------------------------------------

_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 1rem 3rem;
       color: #1a1a1a; background: #fff; }
header { border-bottom: 2px solid #ddd; margin-bottom: 1rem; }
nav ul { padding-left: 1.2rem; } nav li { margin: .15rem 0; }
.meta, figcaption, .constraints, .live { color: #555; font-size: .9rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.over { background: #fde2e2; }
tr.status-violates, tr.status-failed, tr.status-invalid { color: #666; }
td.status-failed, td.status-invalid { color: #a00; } td.status-violates { color: #a35b00; }
td.reason { max-width: 22rem; }
abbr.mode { font-size: .7rem; text-decoration: none; border-radius: 3px; padding: 0 .2rem; }
abbr.mode-measured { background: #d9f0d3; } abbr.mode-simulated { background: #e7e1ef; }
abbr.mode-emulated { background: #d6eaf8; }
svg.pareto { width: 100%; max-width: 640px; height: auto; font-size: 11px; }
svg .grid { stroke: #e6e6e6; } svg .tick, svg .axis-label { fill: #444; }
svg .limit { stroke: #a00; stroke-dasharray: 4 3; } svg .limit-label { fill: #a00; }
svg .front { fill: none; stroke: #d95f02; stroke-width: 2; }
.point .mark { stroke: #7570b3; stroke-width: 2; fill: #7570b3; }
.point.simulated .mark { fill: #fff; }
.point.pareto-optimal .mark { stroke: #d95f02; fill: #d95f02; }
.point.pareto-optimal.simulated .mark { fill: #fff; }
.point.status-violates .mark { stroke: #999; }
.point .label { fill: #222; font-weight: 600; }
.point:focus .mark, .point:hover .mark { stroke-width: 3; }
.teams { display: flex; flex-wrap: wrap; gap: 1rem; }
.team-history h4 { margin: .25rem 0; }
svg.spark { width: 260px; height: 84px; } svg.spark .frame { fill: #fafafa; stroke: #ddd; }
.legend { list-style: none; padding: 0; display: flex; gap: 1rem; }
.swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; vertical-align: -1px; }
.swatch-0 { background: #1b9e77; } .swatch-1 { background: #7570b3; } .swatch-2 { background: #d95f02; }
.swatch-3 { background: #e7298a; } .swatch-4 { background: #66a61e; } .swatch-5 { background: #a6761d; }
section.board { border-top: 1px solid #eee; }
"""

# The live page's only script. It reads its settings from data- attributes (never from text pasted
# into the script) and only ever writes textContent, so results cannot become code.
_LIVE_JS = """
(function () {
  var body = document.body;
  var shown = body.getAttribute("data-board-hash");
  var every = Number(body.getAttribute("data-refresh-ms")) || 2000;
  var status = document.getElementById("live-status");
  function poll() {
    fetch("board.json", {cache: "no-store"}).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      var hash = (r.headers.get("ETag") || "").replace(/"/g, "");
      if (hash && hash !== shown) { location.reload(); return; }
      status.textContent = "Live: checked for new results at " + new Date().toLocaleTimeString() + ".";
      setTimeout(poll, every);
    }).catch(function (err) {
      status.textContent = "Live: the server is not answering (" + err.message + "); trying again.";
      setTimeout(poll, every);
    });
  }
  setTimeout(poll, every);
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def content_security_policy(live: bool) -> str:
    """Nothing loads from anywhere; only this module's own style sheet and (live) script run."""
    script = f"script-src {_csp_hash(_LIVE_JS)}; connect-src 'self'" if live else "script-src 'none'"
    return (f"default-src 'none'; style-src {_csp_hash(_CSS)}; {script}; img-src 'none'; "
            "base-uri 'none'; form-action 'none'")


def _document(title: str, body: str, refresh_s: float | None, board_digest: str) -> str:
    live = refresh_s is not None
    attrs = (f' data-board-hash="{_e(board_digest)}" data-refresh-ms="{max(100, int(refresh_s * 1000))}"'
             if live else "")
    script = f"<script>{_LIVE_JS}</script>" if live else ""
    live_line = ('<p id="live-status" class="live" role="status" aria-live="polite">'
                 "Live: this page reloads by itself when new results arrive.</p>") if live else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy(live)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
            f"<body{attrs}>{live_line}{body}{script}</body></html>\n")


def render(board: dict, *, refresh_s: float | None = None) -> str:
    """The leaderboard page for `board` (the dict of edgekit.olympics.leaderboard.build()).

    refresh_s: None for a static file (no script at all); a number of seconds for the page served by
    edgekit.olympics.serve, which then polls board.json that often and reloads on new results.
    """
    tracks = [t for t in (board.get("tracks") or []) if isinstance(t, dict)]
    store = board.get("store") if isinstance(board.get("store"), dict) else {}
    count = int(_num(store.get("results")) or 0)
    nav, sections = [], []
    for track in tracks:
        name = track.get("name")
        tslug = _slug(name)
        metric = track.get("metric") if track.get("metric") in ("accuracy", "auc") else str(track.get("metric"))
        boards = [b for b in (track.get("boards") or []) if isinstance(b, dict)]
        weights = track.get("weights") if isinstance(track.get("weights"), dict) else {}
        weight_text = ", ".join(f"{_e(k)} {_num(v) * 100:.0f}%" for k, v in weights.items() if _num(v) is not None)
        board_links, board_sections = [], []
        for b in boards:
            tid = f"{tslug}-{_slug(b.get('target'))}"
            label = f'{b.get("board") or b.get("target")} ({b.get("target")})'
            board_links.append(f'<li><a href="#board-{tid}">{_e(label)}</a></li>')
            limits = b.get("constraints") or {}
            limit_text = ", ".join(
                part for part in (
                    f"latency ≤ {_num(limits.get('latency_ms')):g} ms" if _num(limits.get("latency_ms")) else "",
                    f"flash ≤ {_fmt_bytes(_num(limits.get('flash_bytes')))}" if _num(limits.get("flash_bytes")) else "",
                    f"RAM ≤ {_fmt_bytes(_num(limits.get('ram_bytes')))}" if _num(limits.get("ram_bytes")) else "",
                ) if part) or "none"
            board_sections.append(
                f'<section id="board-{tid}" class="board" data-track="{_e(name)}" data-target="{_e(b.get("target"))}">'
                f"<h3>{_e(label)}</h3><p class=\"constraints\">Limits: {limit_text}. "
                "Every figure is labelled <abbr class=\"mode mode-measured\" title=\"measured\">meas</abbr> "
                "(measured on the board), <abbr class=\"mode mode-emulated\" title=\"emulated\">emu</abbr> "
                "(the real firmware and kernels on an emulated core) or "
                "<abbr class=\"mode mode-simulated\" title=\"simulated\">sim</abbr> (simulated).</p>"
                f"{_ranking_table(tid, b, metric)}{_pareto_plot(tid, b, metric)}</section>")
        targets = [str(b.get("target")) for b in boards]
        nav.append(f'<li><a href="#track-{tslug}">{_e(track.get("title") or name)}</a><ul>{"".join(board_links)}</ul></li>')
        sections.append(
            f'<section id="track-{tslug}" class="track" data-track="{_e(name)}">'
            f'<h2>{_e(track.get("title") or name)} <small>(track {_e(name)})</small></h2>'
            f'<p class="meta">Metric: {_e("AUC" if metric == "auc" else metric)}. '
            f"Score weights: {weight_text or 'not given'}.</p>"
            f'{"".join(board_sections)}{_history(tslug, track.get("history"), targets)}</section>')
    # a store that fails verification never gets this far (build refuses it): say what was checked, and
    # the head to compare with the next page (a store swapped whole for an older copy shows only there)
    verified_text = (f"{count} result{'' if count == 1 else 's'} stored; every signature and the chain "
                     f"verified (head {_e(store.get('head') or '-')}).")
    body = (
        "<header><h1>AI Olympics leaderboard</h1>"
        f'<p class="meta">Generated <time id="generated" datetime="{_e(board.get("generated"))}">'
        f'{_e(board.get("generated"))}</time> by edgekit {_e(board.get("edgekit_version"))}.</p>'
        f'<p id="verified" class="meta" data-count="{count}" data-head="{_e(store.get("head"))}">{verified_text}</p>'
        f'<nav aria-label="Tracks and boards"><ul>{"".join(nav)}</ul></nav></header>'
        f'<main>{"".join(sections) or "<p>No tracks yet.</p>"}</main>')
    return _document("AI Olympics leaderboard", body, refresh_s, board_hash(board))


def render_error(message: str, *, refresh_s: float | None = None) -> str:
    """A page saying the leaderboard could not be built; live, it reloads once board.json answers."""
    body = ("<header><h1>AI Olympics leaderboard</h1></header><main>"
            f'<p id="error">The leaderboard could not be built: {_e(message)}</p></main>')
    return _document("AI Olympics leaderboard: error", body, refresh_s, "")
