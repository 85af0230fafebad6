"""The leaderboard page (edgekit.olympics.page) and its live server (edgekit.olympics.serve).

The unit tests parse the rendered HTML with the standard library's parser; the browser test loads the
served page in Debian's chromium (driven by Selenium through Debian's chromedriver), finds the ranking
and the plot, and watches the page update itself when the results change.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser

import pytest

from edgekit.olympics import page
from edgekit.olympics.serve import start_in_thread
from platforms import sigint_default

HOSTILE = "<script>alert(1)</script>"
HOSTILE_ATTR = '"><img src=x onerror=alert(2)>'


def _entry(rank, team, score, metric, latency, flash, ram, energy, mode="simulated", status="ok",
           reason=None, time="2026-11-27T11:59:00Z"):
    return {"rank": rank, "team": team, "submission": team, "score": score, "metric_value": metric,
            "latency_ms": latency, "flash_bytes": flash, "ram_bytes": ram, "energy_mj": energy,
            "mode": mode, "status": status, "reason": reason, "techniques": ["int8 PTQ"],
            "model_sha256": "ab" * 32, "time": time}


def fixture_board() -> dict:
    """3 boards, 5 teams: owls (fast, good), hawks (slower, most accurate), a hostile name, bigfoot
    (too big for the Nano, fine elsewhere) and broken (a malformed model: failed everywhere)."""
    failed = _entry(None, "broken", None, None, None, None, None, None, status="failed",
                    reason="model file is not a TFLite flatbuffer (bad magic)")
    nano = [
        _entry(1, "owls", 0.87, 0.95, 1.2, 90_000, 20_000, 0.010),
        _entry(2, "hawks", 0.80, 0.97, 8.0, 150_000, 40_000, 0.050, mode="measured"),
        _entry(3, HOSTILE, 0.61, 0.90, 3.0, 120_000, 30_000, 0.020),
        _entry(None, "bigfoot", None, 0.99, 20.0, 1_900_000, 300_000, 0.300, status="violates",
               reason="flash 1.90 MB > limit 1.00 MB; RAM 300 kB > limit 256 kB"),
        failed,
    ]
    esp = [
        _entry(1, "bigfoot", 0.90, 0.99, 6.0, 1_900_000, 300_000, 0.2),
        _entry(2, "owls", 0.85, 0.95, 0.6, 90_000, 20_000, 0.008),
        _entry(3, "hawks", 0.83, 0.97, 2.5, 150_000, 40_000, 0.03),
        _entry(4, HOSTILE, 0.60, 0.90, 1.0, 120_000, 30_000, 0.01),
        failed,
    ]
    coral = [
        _entry(1, "owls", 0.92, 0.95, 0.3, 90_000, 20_000, 0.5),
        _entry(2, "hawks", 0.88, 0.97, 0.9, 150_000, 40_000, 0.9),
        _entry(3, "bigfoot", 0.86, 0.99, 4.0, 1_900_000, 300_000, 2.0),
        _entry(4, HOSTILE, 0.70, 0.90, 0.5, 120_000, 30_000, 0.6),
        failed,
    ]
    history = {
        team: [{"time": f"2026-11-{day:02d}T12:00:00Z", "target": target, "score": round(0.5 + 0.05 * day % 0.4, 3),
                "metric_value": 0.9, "latency_ms": 1.0 + day}
               for day in (20, 22, 25, 27) for target in ("nano33ble", "esp32s3", "coral")]
        for team in ("owls", "hawks", HOSTILE)
    }
    history["bigfoot"] = [{"time": "2026-11-27T11:00:00Z", "target": "esp32s3", "score": 0.9,
                           "metric_value": 0.99, "latency_ms": 6.0}]

    def board(target, name, latency, ranking):
        return {"target": target, "board": name,
                "constraints": {"latency_ms": latency, "flash_bytes": 1_000_000, "ram_bytes": 256_000},
                "ranking": ranking}

    return {
        "generated": "2026-11-27T12:00:00Z", "edgekit_version": "0.1.0",
        "store": {"results": 42, "head": "0123456789abcdef"},
        "tracks": [{
            "name": "demo", "title": "Digits (scikit-learn)", "metric": "accuracy",
            "weights": {"accuracy": 0.4, "speed": 0.2, "size": 0.2, "energy": 0.2},
            "boards": [board("nano33ble", "Arduino Nano 33 BLE Sense", 100, nano),
                       board("esp32s3", "Seeed XIAO ESP32S3", 50, esp),
                       board("coral", "Raspberry Pi 4 + Coral USB Accelerator", 10, coral)],
            "history": history,
        }],
    }


class _Elements(HTMLParser):
    """Every start tag with its attributes, the ids of its ancestors and (filled in later) its text."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "circle", "line", "path", "polyline", "rect"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements, self._open = [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "ancestors": [o["attrs"].get("id") for o in self._open], "text": ""}
        self.elements.append(el)
        if tag not in self.VOID:
            self._open.append(el)

    def handle_startendtag(self, tag, attrs):
        self.elements.append({"tag": tag, "attrs": dict(attrs), "text": "",
                              "ancestors": [o["attrs"].get("id") for o in self._open]})

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i]["tag"] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for o in self._open:
            o["text"] += data

    def find(self, tag=None, inside=None, **attrs):
        return [e for e in self.elements
                if (tag is None or e["tag"] == tag) and (inside is None or inside in e["ancestors"])
                and all(e["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items())]


# --- render -----------------------------------------------------------------------------------------


def test_ranking_rows_in_rank_order_then_unranked_with_reasons():
    board = fixture_board()
    # The page must not depend on the order it is given: shuffle the Nano's entries.
    board["tracks"][0]["boards"][0]["ranking"].reverse()
    doc = _Elements(page.render(board))
    rows = doc.find("tr", inside="ranking-demo-nano33ble")
    rows = [r for r in rows if "data-team" in r["attrs"]]
    assert [r["attrs"]["data-team"] for r in rows] == ["owls", "hawks", HOSTILE, "broken", "bigfoot"]
    assert [r["attrs"]["data-rank"] for r in rows] == ["1", "2", "3", "", ""]
    by_team = {r["attrs"]["data-team"]: r for r in rows}
    assert by_team["bigfoot"]["attrs"]["data-status"] == "violates"
    assert "flash 1.90 MB > limit 1.00 MB" in by_team["bigfoot"]["text"]
    assert by_team["broken"]["attrs"]["data-status"] == "failed"
    assert "not a TFLite flatbuffer" in by_team["broken"]["text"]
    assert by_team["hawks"]["attrs"]["data-mode"] == "measured"
    # Each of the five figures (metric, latency, flash, RAM, energy) says how it was obtained.
    assert len(doc.find("abbr", inside="ranking-demo-nano33ble", title="measured")) == 5
    # The figures over the Nano's limits are marked.
    over = [e for e in doc.find("td", inside="ranking-demo-nano33ble") if "over" in e["attrs"].get("class", "")]
    assert len(over) == 2 and all("MB" in e["text"] or "kB" in e["text"] for e in over)
    # All three boards have a table of their own.
    for target in ("nano33ble", "esp32s3", "coral"):
        assert doc.find("table", id=f"ranking-demo-{target}")


def test_hostile_strings_are_text_never_markup():
    board = fixture_board()
    entry = board["tracks"][0]["boards"][1]["ranking"][0]
    entry["team"], entry["reason"], entry["techniques"] = HOSTILE_ATTR, HOSTILE, [HOSTILE_ATTR]
    board["tracks"][0]["title"] = HOSTILE
    board["generated"] = HOSTILE_ATTR
    for html in (page.render(board), page.render(board, refresh_s=1)):
        assert "<script>alert" not in html and "<img" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        doc = _Elements(html)
        assert not doc.find("img")
        scripts = doc.find("script")
        assert len(scripts) == (1 if "data-refresh-ms" in html else 0)
        assert all("alert" not in s["text"] for s in scripts)
        # ... and the names survive intact as data, so the browser shows them as typed.
        teams = {r["attrs"].get("data-team") for r in doc.find("tr", inside="ranking-demo-esp32s3")}
        assert {HOSTILE, HOSTILE_ATTR} <= teams


def test_ids_from_untrusted_names_are_reduced_to_safe_characters():
    board = fixture_board()
    board["tracks"][0]["name"] = 'x" onmouseover="alert(3)'
    html = page.render(board)
    assert 'onmouseover="' not in html
    assert _Elements(html).find("table", id="ranking-x-onmouseover-alert-3-nano33ble")


def test_pareto_front_membership():
    pts = [(1.0, 0.90), (2.0, 0.95), (3.0, 0.95), (0.5, 0.80), (2.0, 0.85), (2.0, 0.95)]
    # (3, .95) is beaten by (2, .95) on speed; (2, .85) by (1, .90) on both; the two (2, .95) tie.
    assert page.pareto_front(pts) == [True, True, False, True, False, True]
    assert page.pareto_front([]) == []
    assert page.pareto_front([(5.0, 0.5)]) == [True]


def test_pareto_plot_points_front_and_marks():
    doc = _Elements(page.render(fixture_board()))
    points = {p["attrs"]["data-team"]: p["attrs"] for p in doc.find("g", inside="pareto-demo-nano33ble")
              if "point" in p["attrs"].get("class", "").split()}
    # Failed entries have nothing to plot; the one over the limits is drawn but cannot be optimal.
    assert set(points) == {"owls", "hawks", HOSTILE, "bigfoot"}
    assert {t for t, a in points.items() if a["data-pareto"] == "true"} == {"owls", "hawks"}
    assert points["bigfoot"]["data-status"] == "violates"
    assert points["hawks"]["data-mode"] == "measured" and points["owls"]["data-mode"] == "simulated"
    # The front is joined by a line, and its points are labelled with their team.
    assert len(doc.find("polyline", inside="pareto-demo-nano33ble", **{"class": "front"})) == 1
    labels = [t["text"] for t in doc.find("text", inside="pareto-demo-nano33ble") if t["attrs"].get("class") == "label"]
    assert sorted(labels) == ["hawks", "owls"]
    # On the ESP32-S3 bigfoot fits, is ranked and is the most accurate, so it joins the front; hawks is
    # faster than bigfoot and more accurate than owls, so it stays; the hostile team loses to owls.
    esp = {p["attrs"]["data-team"]: p["attrs"]["data-pareto"] for p in doc.find("g", inside="pareto-demo-esp32s3")
           if "point" in p["attrs"].get("class", "").split()}
    assert esp == {"bigfoot": "true", "owls": "true", "hawks": "true", HOSTILE: "false"}
    # The latency axis is logarithmic: decade ticks.
    ticks = [t["text"] for t in doc.find("text", inside="pareto-demo-nano33ble") if t["attrs"].get("class") == "tick"]
    assert {"1 ms", "10 ms", "100 ms"} <= set(ticks)


def test_history_verified_generated_and_self_contained():
    html = page.render(fixture_board())
    doc = _Elements(html)
    teams = [d["attrs"]["data-team"] for d in doc.find("div", inside="history-demo")
             if d["attrs"].get("class") == "team-history"]
    assert teams == ["owls", "hawks", HOSTILE, "bigfoot"]
    owls = next(d for d in doc.find("div", inside="history-demo") if d["attrs"].get("data-team") == "owls")
    assert "12 results" in owls["text"]  # 4 dates x 3 boards
    lines = [p for p in doc.find("polyline", inside="history-demo")]
    assert len(lines) == 3 * 3  # owls, hawks, the hostile team: one line per board; bigfoot has one point
    verified = doc.find(id="verified")[0]  # what the reader can compare with the last published page
    assert verified["attrs"]["data-count"] == "42" and verified["attrs"]["data-head"] == "0123456789abcdef"
    assert "42 results stored" in verified["text"] and "0123456789abcdef" in verified["text"]
    assert doc.find("time", id="generated")[0]["text"] == "2026-11-27T12:00:00Z"
    # Self-contained: the only URLs are the SVG namespace; no script in the static page.
    assert "src=" not in html and "<link" not in html and "@import" not in html
    assert {u for u in re.findall(r"https?://[^\"' )]+", html)} == {"http://www.w3.org/2000/svg"}
    assert not doc.find("script")


def test_empty_and_malformed_boards_still_render():
    for board in ({}, {"tracks": [{"name": "t", "boards": [{"target": "nano33ble", "ranking": []}]}]},
                  {"tracks": [{"name": "t", "boards": [{"target": "x", "ranking": [
                      {"rank": "1", "team": None, "latency_ms": float("nan"), "metric_value": "high"}]}],
                      "history": {"a": "not a list"}}]}):
        html = page.render(board)
        assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")


# --- serve ------------------------------------------------------------------------------------------


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, dict(r.headers), r.read()


def test_server_page_json_etag_and_404():
    state = {"board": fixture_board(), "calls": 0}

    def build():
        state["calls"] += 1
        board = copy.deepcopy(state["board"])
        board["generated"] = f"2026-11-27T12:00:{state['calls'] % 60:02d}Z"  # new on every build, like the core
        return board

    url, stop = start_in_thread(build, port=0, refresh_s=0.5)
    try:
        assert url.startswith("http://127.0.0.1:")
        status, headers, body = _get(url)
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert b'data-refresh-ms="500"' in body
        _, h1, j1 = _get(url + "board.json")
        _, h2, _ = _get(url + "board.json")
        assert json.loads(j1)["tracks"][0]["name"] == "demo"
        assert h1["ETag"] == h2["ETag"], "only the generated stamp changed: the page must not reload"
        state["board"]["store"] = {"results": 43, "head": "fedcba9876543210"}
        _, h3, _ = _get(url + "board.json")
        assert h3["ETag"] != h1["ETag"]
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(url + "nope")
        assert err.value.code == 404
    finally:
        stop()
        stop()  # twice is fine
    with pytest.raises(OSError):
        _get(url)


def test_server_survives_a_failing_build():
    def build():
        raise RuntimeError("database is locked <b>")

    url, stop = start_in_thread(build, port=0)
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(url)
        assert err.value.code == 500
        text = err.value.read().decode()
        assert "database is locked &lt;b&gt;" in text and "<b>" not in text
        with pytest.raises(urllib.error.HTTPError):
            _get(url + "board.json")
    finally:
        stop()


def test_serve_prints_its_url_and_stops_cleanly_on_ctrl_c():
    # The real entry point in its own process, stopped the way a user stops it: SIGINT (Ctrl-C).
    code = ("from edgekit.olympics.serve import serve; import json, sys; "
            "board = json.loads(sys.argv[1]); serve(lambda: board, port=0, refresh_s=1)")
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(fixture_board())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_default)  # Ctrl-C must reach it
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        status, _, body = _get(url)
        assert status == 200 and b'id="ranking-demo-nano33ble"' in body
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


# --- the real browser -------------------------------------------------------------------------------

CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def browser():
    chromium = shutil.which("chromium")
    if not chromium or not os.access(CHROMEDRIVER, os.X_OK):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
                    ".ci/run installs them)")
    # selenium comes with the test extra; if it is missing that is a broken install, not a skip.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses
                "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_browser_shows_ranking_plot_and_updates_itself(browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    state = {"board": fixture_board(), "calls": 0}

    def build():
        state["calls"] += 1
        board = copy.deepcopy(state["board"])
        board["generated"] = f"2026-11-27T12:{state['calls'] // 60 % 60:02d}:{state['calls'] % 60:02d}Z"
        return board

    url, stop = start_in_thread(build, port=0, refresh_s=0.3)
    try:
        browser.get(url)
        rows = browser.find_elements(By.CSS_SELECTOR, "#ranking-demo-nano33ble tbody tr")
        assert [r.get_attribute("data-team") for r in rows] == ["owls", "hawks", HOSTILE, "bigfoot", "broken"]
        # The hostile name is shown as the text it is, and it ran nothing.
        assert rows[2].find_element(By.CSS_SELECTOR, "th.team").text == HOSTILE
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text
        assert "not a TFLite flatbuffer" in rows[4].text

        # The plot: SVG points, Pareto-optimal ones marked, rendered with a real size.
        points = browser.find_elements(By.CSS_SELECTOR, "svg#pareto-demo-nano33ble.pareto g.point")
        assert len(points) == 4
        front = {p.get_attribute("data-team") for p in points if p.get_attribute("data-pareto") == "true"}
        assert front == {"owls", "hawks"}
        marks = browser.find_elements(By.CSS_SELECTOR, "svg#pareto-demo-nano33ble g.point circle")
        assert all(m.size["width"] > 0 for m in marks)
        # owls is faster than hawks: further left on the log axis.
        cx = {p.get_attribute("data-team"): p.find_element(By.CSS_SELECTOR, ".mark").rect["x"] for p in points}
        assert cx["owls"] < cx["hawks"]
        # The inline style sheet was allowed by the page's Content-Security-Policy.
        table = browser.find_element(By.ID, "ranking-demo-nano33ble")
        assert table.value_of_css_property("border-collapse") == "collapse"

        # Builds that change only "generated" must not reload the page: a marker survives several polls.
        browser.execute_script("window.edgekitMarker = 1;")
        WebDriverWait(browser, 20).until(
            lambda d: "checked for new results" in d.find_element(By.ID, "live-status").text)
        time.sleep(1.0)
        assert browser.execute_script("return window.edgekitMarker;") == 1

        # A new result arrives: a team jumps to first place on the Nano. The page updates by itself.
        newcomer = _entry(1, "falcons", 0.95, 0.96, 0.9, 80_000, 18_000, 0.009)
        ranking = state["board"]["tracks"][0]["boards"][0]["ranking"]
        for e in ranking:
            if e["rank"] is not None:
                e["rank"] += 1
        ranking.insert(0, newcomer)
        # Polled every 0.3 s; the wait is generous because a loaded 2-core CI machine can take seconds
        # to reload a page (a tight bound here failed once in a full run): it tests that the page
        # updates by itself, not how fast.
        WebDriverWait(browser, 20).until(
            lambda d: d.find_element(By.CSS_SELECTOR, "#ranking-demo-nano33ble tbody tr").get_attribute("data-team")
            == "falcons")
        assert browser.execute_script("return window.edgekitMarker;") is None  # it really reloaded
        front = {p.get_attribute("data-team") for p in browser.find_elements(
            By.CSS_SELECTOR, "svg#pareto-demo-nano33ble g.point[data-pareto='true']")}
        assert front == {"falcons", "hawks"}  # falcons beats owls on both; hawks is still the most accurate

        # No errors in the page's console (a CSP refusal of the inline script or style would show here).
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        stop()
