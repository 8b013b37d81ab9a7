"""The web page: its form and results under Streamlit's AppTest, and once in a real headless browser."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from alloy_hydra.answers import QueryLog
from alloy_hydra.ui import REGISTRY_ENV

PAGE = str(ROOT / "alloy_hydra" / "webapp.py")
DEMO = ROOT / "alloy_hydra" / "data" / "demo_cards.csv"


def page(registry, monkeypatch) -> AppTest:
    monkeypatch.setenv(REGISTRY_ENV, str(registry))
    at = AppTest.from_file(PAGE, default_timeout=900)  # generous: a busy machine must not fail the test
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_form_finds_alloys_and_shows_them(demo_registry, monkeypatch):
    at = page(demo_registry.path, monkeypatch)
    assert [n.label for n in at.number_input][:3] == ["Target YS (MPa)", "Target UTS (MPa)", "Target elongation (%)"]
    assert at.selectbox(key="family").value == "AA5xxx" and at.selectbox(key="casting").value == "DC"
    models = at.sidebar.dataframe[0].value
    assert set(models["ref"]) == {"YS:1", "UTS:1", "FractureEL:1"}  # the versions in use are on the page
    at.number_input(key="t_YS").set_value(255.0)
    at.slider(key="top").set_value(5)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert "5 recipes" in at.success[0].value and "YS 255 MPa" in at.success[0].value
    table = at.main.dataframe[0].value
    assert len(table) == 5 and {"YS (MPa)", "UTS (MPa)", "FractureEL (%)", "in domain", "note"} <= set(table)
    assert table["YS (MPa)"].str.fullmatch(r"[\d.]+ ± [\d.]+").all() and (table["casting"] == "DC").all()
    assert {b.label for b in at.download_button} >= {"Download recommendations (CSV)", "Download recipe cards (CSV)"}
    # the page's query is in the service's query log, in the service's record, under the id the page shows
    qid = at.session_state["query_id"]
    assert any(qid in c.value for c in at.caption)
    row = next(r for r in QueryLog(demo_registry.path / "queries.sqlite").rows() if r["id"] == qid)
    record = json.loads(row["outputs"])
    assert row["endpoint"] == "/design" and row["status"] == 200 and json.loads(row["inputs"])["via"] == "page"
    assert len(record["candidates"]) == 5 and record["targets"]["YS"] == 255
    assert set(record["candidates"][0]) == {"rank", "p_hit", "in_domain", "predictions", "nearest_card"}


def test_an_infeasible_question_is_said_plainly(demo_registry, monkeypatch):
    at = page(demo_registry.path, monkeypatch)
    at.number_input(key="max_cost").set_value(1.0)  # nothing but pure aluminium costs that little
    at.button[0].click()
    at.run()
    assert not at.exception and "no feasible recipe" in at.warning[0].value


def test_an_infeasible_question_names_the_blocking_constraint_in_words(demo_registry, monkeypatch):
    at = page(demo_registry.path, monkeypatch)
    at.number_input(key="max_cost").set_value(1.0)
    at.button[0].click()
    at.run()
    text = at.warning[0].value
    assert "cost index at most 1" in text and "{" not in text and "target_" not in text, text


def test_the_page_applies_the_apis_limits_and_speaks_in_labels(demo_registry, monkeypatch):
    from alloy_hydra.assistant import TARGET_LIMITS

    at = page(demo_registry.path, monkeypatch)
    ys = at.number_input(key="t_YS")
    assert ys.min > TARGET_LIMITS["YS"][0] and ys.max == TARGET_LIMITS["YS"][1]  # a YS target of 0 cannot be typed
    at.number_input(key="t_YS").set_value(400.0)
    at.number_input(key="t_UTS").set_value(300.0)
    at.button[0].click()
    at.run()
    text = at.error[0].value
    assert text.startswith("Target YS (MPa):") and "above target UTS" in text and "target_YS" not in text, text


def test_the_page_needs_the_token_it_was_started_with(demo_registry, monkeypatch):
    from alloy_hydra import ui

    monkeypatch.setenv(ui.TOKEN_ENV, "s3cret")
    at = page(demo_registry.path, monkeypatch)
    assert not at.button and not at.sidebar.dataframe  # nothing but the token field
    at.text_input(key="token").set_value("wrong").run()
    assert "not valid" in at.error[0].value and not at.button
    at.text_input(key="token").set_value("s3cret").run()
    assert not at.exception and at.button


def test_ui_refuses_a_non_loopback_host_without_a_token(monkeypatch, capsys):
    from alloy_hydra import ui

    monkeypatch.delenv(ui.TOKEN_ENV, raising=False)
    assert ui.main(["--host", "0.0.0.0"]) == 2 and ui.TOKEN_ENV in capsys.readouterr().out


def test_an_empty_registry_says_how_to_build_one(tmp_path, monkeypatch):
    at = page(tmp_path / "empty", monkeypatch)
    assert "python -m alloy_hydra.registry demo" in at.error[0].value


def test_the_predict_tab_scores_uploaded_cards(demo_registry, monkeypatch):
    at = page(demo_registry.path, monkeypatch)
    text = DEMO.read_text().splitlines()
    at.file_uploader(key="cards").set_value(("cards.csv", "\n".join(text[:8]).encode(), "text/csv"))
    at.run()
    assert not at.exception, at.exception
    shown = at.main.dataframe[-1].value
    assert len(shown) == 7 and {"YS", "UTS", "FractureEL", "rejected"} <= set(shown)
    logged = [r for r in QueryLog(demo_registry.path / "queries.sqlite").rows() if r["endpoint"] == "/predict"]
    assert json.loads(logged[-1]["outputs"])["n_cards"] == 7 and json.loads(logged[-1]["inputs"])["via"] == "page"
    at.file_uploader(key="cards").set_value(("bad.csv", b"a;b\n1;2", "text/csv"))
    at.run()
    assert "bad.csv" in at.error[0].value
    # logged as the service logs a card it cannot read: 422, the field at fault, the message, the query id
    refused = [r for r in QueryLog(demo_registry.path / "queries.sqlite").rows() if r["endpoint"] == "/predict"][-1]
    error = json.loads(refused["outputs"])["error"]
    assert refused["status"] == 422 and error["field"] == "cards" and error["query_id"] == refused["id"]
    assert "bad.csv" in error["message"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_in_a_real_browser(demo_registry, tmp_path):
    chromium, driver_bin = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_bin:
        pytest.skip("no chromium / chromedriver here (apt-get install chromium chromium-driver; .ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "alloy_hydra.ui", "--registry", str(demo_registry.path), "--port", str(port)]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)  # fmt: skip
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2000"):
        opts.add_argument(arg)
    browser = webdriver.Chrome(service=webdriver.ChromeService(driver_bin), options=opts)
    shot = Path(os.environ.get("ALLOY_HYDRA_SCREENSHOT", tmp_path / "design_page.png"))
    try:
        wait = WebDriverWait(browser, 900)  # generous: start-up and the search on a busy machine
        for _ in range(120):
            try:
                browser.get(f"http://127.0.0.1:{port}")
                break
            except Exception:  # noqa: BLE001 - the server is still starting
                assert server.poll() is None, server.stdout.read()
                import time

                time.sleep(1)
        button = wait.until(lambda d: d.find_element(By.XPATH, "//button[.//p[text()='Find alloys']]"))
        ys = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "input[aria-label='Target YS (MPa)']"))
        ys.click()
        ys.send_keys(Keys.CONTROL, "a")
        ys.send_keys("265", Keys.TAB)  # the form takes a number when the field loses focus
        wait.until(lambda d: ys.get_attribute("value") == "265.00")
        button.click()
        wait.until(lambda d: "recipes (of" in d.find_element(By.TAG_NAME, "body").text)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "[data-testid='stDataFrame']")) >= 2)
        wait.until(lambda d: "Download recipe cards (CSV)" in d.find_element(By.TAG_NAME, "body").text)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='stImage'] img, [data-testid='stPyplot']"))
        text = browser.find_element(By.TAG_NAME, "body").text
        assert "YS 265 MPa" in text and "YS:1" in text
        shot.parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
    finally:
        browser.quit()
        os.killpg(server.pid, signal.SIGTERM)  # the page and anything it started
        server.wait(60)


def test_the_summary_table_shows_what_a_metallurgist_decides_on():
    """The page's table: elements that differ, predictions ± σ, chance, cost, schedules in words."""
    from alloy_hydra.assistant import summary_table
    from alloy_hydra.config import compose

    cfg = compose()
    top = pd.DataFrame(
        {
            "rank": [1, 2],
            "Mg": [4.5, 3.1],
            "Zn": [0.0, 0.01],
            "Al": [95.5, 96.89],
            "YS_pred": [261.0, 255.5],
            "YS_std": [6.2, 7.0],
            "p_hit": [0.8, 0.6],
            "in_domain": [True, True],
            "cost_index": [1.02, 1.01],
            "casting": ["DC", "DC"],
            "homog_schedule_readable": ["520 °C × 6 h", "540 °C × 2 h"],
            "nearest_card": ["a / row 3", "b / row 9"],
            "note": ["", ""],
        }
    )
    result = {"candidates": top, "elements": ["Mg", "Zn", "Al"], "targets": {"YS": 260.0}, "units": {"YS": "MPa"}}
    table = summary_table({**result, "data": cfg.data})
    assert list(table["YS (MPa)"]) == ["261.0 ± 6.2", "255.5 ± 7.0"]
    assert "Mg wt%" in table and "Zn wt%" not in table and list(table["homog"]) == ["520 °C × 6 h", "540 °C × 2 h"]
