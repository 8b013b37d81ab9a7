"""The FastAPI service: every endpoint, every refusal, the query log, the worker bound, and a real uvicorn."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pandas as pd
import pytest
from conftest import ROOT
from fastapi.testclient import TestClient

from alloy_hydra import service
from alloy_hydra.registry import Registry

ACTION_PLAN = {"target_YS": 260, "target_UTS": 320, "target_EL": 12, "alloy_family": "AA5xxx", "casting": "DC"}
ACTION_PLAN |= {"max_cost": 2.0, "pop_size": 40, "n_gen": 40}
DEMO = ROOT / "alloy_hydra" / "data" / "demo_cards.csv"


def demo_records(n, start=0):
    cards = pd.read_csv(DEMO, dtype=str, keep_default_na=False).iloc[start : start + n]
    return cards.to_dict("records")


@pytest.fixture(scope="module")
def client(demo_registry, tmp_path_factory):
    log = tmp_path_factory.mktemp("qlog") / "queries.sqlite"
    app = service.create_app(demo_registry.path, query_log=log, max_cards=50, max_body_bytes=200_000)
    with TestClient(app) as c:
        yield c


def test_docs_show_every_response_schema_and_answers_match_them(client):
    """/docs (OpenAPI): each endpoint names its response model; the answers validate against them."""
    from alloy_hydra.service import schemas

    spec = client.get("/openapi.json").json()
    want = {("/health", "get"): "Health", ("/models", "get"): "ModelsAnswer"}
    want |= {("/design", "post"): "DesignAnswer", ("/predict", "post"): "PredictAnswer"}
    for (path, method), name in want.items():
        ref = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/" + name) and "properties" in spec["components"]["schemas"][name]
    answer = client.post("/predict", json={"cards": demo_records(3)}).json()
    assert schemas.PredictAnswer.model_validate(answer).n_cards == 3
    schemas.Health.model_validate(client.get("/health").json())


def test_health_and_models(client):
    h = client.get("/health").json()
    assert h["ready"] is True and h["models"] == {"FractureEL": "FractureEL:1", "UTS": "UTS:1", "YS": "YS:1"}
    m = client.get("/models").json()
    assert m["targets"]["YS"]["aliases"] == {"champion": 1} and m["cards"]["YS"]["1"]["unit"] == "MPa"
    assert m["options"]["castings"] == ["CC", "DC"] and "AA5xxx" in m["options"]["families"]
    assert client.get("/openapi.json").status_code == 200 and client.get("/docs").status_code == 200


def test_design_answers_the_action_plans_question(client):
    r = client.post("/design", json=ACTION_PLAN)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["versions"] == {"YS": "YS:1", "UTS": "UTS:1", "FractureEL": "FractureEL:1"} and d["query_id"]
    assert 0 < len(d["candidates"]) <= 20 and d["reason"] is None
    c = d["candidates"][0]
    assert abs(sum(c["composition_wt_pct"].values()) - 100) < 0.05 and c["process"]["casting"] == "DC"
    assert c["card"]["Casting"] == "DC" and c["cost_index"] <= 2.0 and c["in_domain"] is True
    assert set(c["predictions"]) == {"YS", "UTS", "FractureEL"}
    p = c["predictions"]["YS"]
    assert p["unit"] == "MPa" and p["std"] > 0 and abs(p["pred"] - 260 - p["dev"]) < 1e-3
    assert [x["rank"] for x in d["candidates"]] == list(range(1, len(d["candidates"]) + 1))
    assert c["nearest_card"] and isinstance(c["note"], str)


def test_infeasible_is_200_with_a_reason_and_a_missing_model_is_404(client, demo_registry, tmp_path):
    r = client.post("/design", json={"target_YS": 900, "min_YS": 890, "pop_size": 20, "n_gen": 5})
    assert r.status_code == 200 and r.json()["candidates"] == [] and "no feasible recipe" in r.json()["reason"]
    only_ys = Registry(tmp_path / "models")
    only_ys.publish(demo_registry.load("YS").card["members"][0]["run"], alias="champion")
    with TestClient(service.create_app(only_ys.path)) as c:
        r = c.post("/design", json={"target_YS": 260, "target_EL": 12})
        assert r.status_code == 404 and r.json()["detail"]["field"] == "FractureEL"
        assert "no published model for target 'FractureEL'" in r.json()["detail"]["message"]
    r = client.post("/design", json={"target_YS": 260, "models": {"YS": "7"}})
    assert r.status_code == 404 and "no version 7" in r.json()["detail"]["message"]


@pytest.mark.parametrize(
    "body, field, text",
    [
        ({"target_YS": 260, "alloy_family": "AA9xxx"}, "alloy_family", "AA5xxx"),
        ({"target_YS": 260, "casting": "sand"}, "casting", "CC, DC"),
        ({"target_YS": "strong"}, "target_YS", "number"),
        ({"target_YS": -5}, "target_YS", "greater than 0"),
        ({"target_YS": 260, "colour": "red"}, "colour", "Extra inputs"),
        ({"target_YS": 260, "models": {"YS": "../../etc/passwd"}}, "models.YS", "pattern"),
        ({"target_YS": 260, "n_gen": 10_000}, "n_gen", "less than or equal"),
        ({}, "targets", "at least one target"),
    ],
)
def test_bad_design_requests_name_the_field(client, body, field, text):
    r = client.post("/design", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    entries = detail if isinstance(detail, list) else [detail]
    assert any(e["field"] == field and text in e["message"] for e in entries), detail
    assert "Traceback" not in r.text


def test_predict_answers_every_card(client):
    cards = demo_records(6)
    cards[2]["Mg"] = "45"  # outside the chem window: rejected by the cleaning, still answered
    r = client.post("/predict", json={"cards": cards})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["n_cards"] == 6 and [x["card"] for x in d["results"]] == [1, 2, 3, 4, 5, 6]
    bad = d["results"][2]
    assert "chem window" in bad["rejected_reason"] and bad["predictions"]["YS"]["pred"] is None
    good = d["results"][0]["predictions"]
    assert set(good) == {"YS", "UTS", "FractureEL"} and good["YS"]["std"] > 0 and good["YS"]["in_domain"] in (0, 1)
    only = client.post("/predict", json={"cards": cards[:1], "targets": ["UTS"]}).json()
    assert set(only["results"][0]["predictions"]) == {"UTS"} and only["versions"] == {"UTS": "UTS:1"}


def test_size_limits(client):
    r = client.post("/predict", json={"cards": demo_records(51)})
    assert r.status_code == 413 and "at most 50 cards" in r.text
    r = client.post("/predict", json={"cards": []})
    assert r.status_code == 422
    big = json.dumps({"cards": [{"x": "y" * 150}] * 2000})
    r = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.text


def test_every_query_is_logged(client):
    client.post("/predict", json={"cards": demo_records(2)})
    client.post("/design", json={"target_YS": 260, "alloy_family": "AA9xxx"})
    rows = client.app.state.queries.rows()
    assert {r["endpoint"] for r in rows} >= {"/predict", "/design"}
    last = rows[-1]
    assert last["status"] == 422 and json.loads(last["inputs"])["alloy_family"] == "AA9xxx"
    ok = [r for r in rows if r["endpoint"] == "/predict" and r["status"] == 200][-1]
    assert json.loads(ok["versions"])["YS"] == "YS:1" and json.loads(ok["outputs"])["query_id"] == ok["id"]


def test_token_guards_everything_but_health(demo_registry, tmp_path):
    app = service.create_app(demo_registry.path, token="s3cret", query_log=tmp_path / "q.sqlite")
    with TestClient(app) as c:
        assert c.get("/health").status_code == 200
        assert c.get("/models").status_code == 401
        assert c.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/predict", json={"cards": demo_records(1)}).status_code == 401
        assert c.get("/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_refuses_to_listen_beyond_loopback_without_a_token(monkeypatch, capsys):
    monkeypatch.delenv(service.TOKEN_ENV, raising=False)
    assert service.main(["--host", "0.0.0.0"]) == 2
    assert service.TOKEN_ENV in capsys.readouterr().out
    assert service.is_loopback("127.0.0.1") and service.is_loopback("::1") and not service.is_loopback("10.0.0.1")


def test_a_full_pool_answers_503_with_retry_after(demo_registry, tmp_path):
    app = service.create_app(demo_registry.path, workers=1, query_log=tmp_path / "q.sqlite")
    started, release = threading.Event(), threading.Event()
    real = app.state.assistant.predict

    def slow(*args, **kw):
        started.set()
        release.wait(60)
        return real(*args, **kw)

    app.state.assistant.predict = slow
    with TestClient(app) as c:
        first = {}
        t = threading.Thread(target=lambda: first.update(r=c.post("/predict", json={"cards": demo_records(1)})))
        t.start()
        assert started.wait(60)
        r = c.post("/design", json={"target_YS": 260})
        assert r.status_code == 503 and r.headers["Retry-After"] == "5"
        release.set()
        t.join(60)
        assert first["r"].status_code == 200  # the request holding the slot was answered, not dropped
        assert [q["status"] for q in app.state.queries.rows()] == [503, 200]


def test_errors_never_show_a_traceback(demo_registry, tmp_path):
    app = service.create_app(demo_registry.path, query_log=tmp_path / "q.sqlite")

    def broken(*a, **k):
        raise RuntimeError("secret internals")

    app.state.assistant.design = broken
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/design", json={"target_YS": 260})
    assert r.status_code == 500 and "secret" not in r.text and "Traceback" not in r.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_real_uvicorn_serves_design_and_predict(demo_registry):
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(service.TOKEN_ENV, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "alloy_hydra.service", "--registry", str(demo_registry.path), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # wait for start-up however slow the machine is
            try:
                if httpx.get(f"{url}/health", timeout=5).json()["ready"]:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        d = httpx.post(f"{url}/design", json=ACTION_PLAN, timeout=600).json()
        assert len(d["candidates"]) > 0 and d["versions"]["YS"] == "YS:1"
        p = httpx.post(f"{url}/predict", json={"cards": demo_records(3)}, timeout=600).json()
        assert p["n_cards"] == 3
    finally:
        proc.terminate()
        proc.wait(60)


def test_concurrent_designs_are_all_answered(client):
    """Two searches at once (the pool has the machine's cores): both answered, with run.py's single answer."""
    out = []
    body = {**ACTION_PLAN, "pop_size": 20, "n_gen": 8}
    threads = [threading.Thread(target=lambda: out.append(client.post("/design", json=body))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert sorted(r.status_code for r in out) in ([200, 200], [200, 503])
    ok = [r.json()["candidates"] for r in out if r.status_code == 200]
    assert all(c == ok[0] for c in ok)


# --- faults are the server's; answers that cannot mislead (issue 29, items 4-5) ----------------------------------
def copied_registry(demo_registry, tmp_path):
    import shutil

    shutil.copytree(demo_registry.path, tmp_path / "models")
    return tmp_path / "models"


def test_a_tampered_model_file_is_a_503_naming_the_version_and_health_is_not_ready(demo_registry, tmp_path):
    root = copied_registry(demo_registry, tmp_path)
    model = root / "YS" / "1" / "model_0.json"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1  # one changed byte
    model.write_bytes(bytes(data))
    with TestClient(service.create_app(root, query_log=tmp_path / "q.sqlite")) as c:
        h = c.get("/health").json()
        assert h["ready"] is False and "YS:1" in h["reason"] and "model_0.json" in h["reason"]
        for r in (
            c.post("/design", json={"target_YS": 260, "pop_size": 10, "n_gen": 2}),
            c.post("/predict", json={"cards": demo_records(2)}),
        ):
            assert r.status_code == 503, r.text
            d = r.json()["detail"]
            assert d["field"] == "registry" and "YS:1" in d["message"] and "sha256" in d["message"]
            assert r.headers["Retry-After"]
        assert str(tmp_path) not in c.get("/health").text
        assert [q["status"] for q in c.app.state.queries.rows()] == [503, 503]


def test_a_truncated_index_is_a_503_everywhere_and_no_answer_shows_a_server_path(demo_registry, tmp_path):
    root = copied_registry(demo_registry, tmp_path)
    with TestClient(service.create_app(root, query_log=tmp_path / "q.sqlite")) as c:
        for r in (c.get("/health"), c.get("/models")):  # a healthy registry first: no absolute path in any answer
            assert str(root) not in r.text and str(ROOT) not in r.text and "/tmp/" not in r.text, r.text[:500]
        index = root / "index.json"
        index.write_text(index.read_text()[:100])
        h = c.get("/health").json()
        assert h["ready"] is False and "index.json is not valid JSON" in h["reason"] and str(root) not in h["reason"]
        for r in (
            c.get("/models"),
            c.post("/design", json={"target_YS": 260}),
            c.post("/predict", json={"cards": demo_records(1)}),
        ):
            assert r.status_code == 503, r.text
            assert r.json()["detail"]["field"] == "registry" and str(root) not in r.text


def test_every_refused_request_is_logged_with_its_status_bounded_and_strict(demo_registry, tmp_path):
    app = service.create_app(
        demo_registry.path, token="s3cret", query_log=tmp_path / "q.sqlite", log_max_bytes=2000, max_body_bytes=50_000
    )
    auth = {"Authorization": "Bearer s3cret"}

    def broken(*a, **k):
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/models").status_code == 401
        assert c.post("/design", json={"target_YS": "strong"}, headers=auth).status_code == 422
        r = c.post("/predict", content=b"{}", headers={**auth, "content-length": "999999"})
        assert r.status_code in (400, 413)  # the declared length is refused before the body is read
        long = {"cards": [{"Mg": "x" * 30_000}]}
        assert c.post("/predict", json=long, headers=auth).status_code in (200, 422)
        app.state.assistant.design = broken
        assert c.post("/design", json={"target_YS": 260}, headers=auth).status_code == 500
    rows = app.state.queries.rows()
    statuses = [r["status"] for r in rows]
    assert statuses[:2] == [401, 422] and 500 in statuses and (413 in statuses or 400 in statuses), statuses

    def no_constants(x):
        raise AssertionError(f"non-standard JSON constant {x}")

    for r in rows:
        for col in ("inputs", "versions", "outputs"):
            assert len(r[col].encode()) <= 2000, (r["status"], col, len(r[col]))
            json.loads(r[col], parse_constant=no_constants)
    big = [r for r in rows if r["endpoint"] == "/predict" and '"truncated": true' in r["inputs"]]
    assert big and len(json.loads(big[0]["inputs"])["sha256"]) == 64


def test_the_query_log_keeps_rows_for_its_retention_only(tmp_path):
    log = service.QueryLog(tmp_path / "q.sqlite", retention_days=30)
    log.add("new", "/design", 200, {"x": float("nan")}, {}, {"y": float("inf")})
    with log._connect() as db:
        db.execute(
            "INSERT INTO queries VALUES ('old', '2020-01-01T00:00:00.000+00:00', '/design', 200, '{}', '{}', '{}')"
        )
    assert log.prune() == 1 and [r["id"] for r in log.rows()] == ["new"]
    assert json.loads(log.rows()[0]["inputs"]) == {"x": None}  # strict JSON: NaN stored as null
    kept = service.QueryLog(tmp_path / "q2.sqlite", retention_days=None)
    with kept._connect() as db:
        db.execute(
            "INSERT INTO queries VALUES ('old', '2020-01-01T00:00:00.000+00:00', '/design', 200, '{}', '{}', '{}')"
        )
    assert kept.prune() == 0 and len(kept.rows()) == 1


@pytest.mark.parametrize(
    "body, field, text",
    [
        ({"target_YS": 400, "target_UTS": 300}, "target_YS", "above target UTS"),
        ({"target_UTS": 300, "min_YS": 350}, "target_YS", "minimum YS 350 is above target UTS"),
        ({"target_YS": 260, "fixed": {"foo": "bar"}}, "fixed.foo", "not a categorical"),
        ({"target_YS": 260, "fixed": {"recryst_type": "zzz"}}, "fixed.recryst_type", "batch"),
        ({"target_YS": 260, "casting": "DC", "fixed": {"casting": "CC"}}, "fixed.casting", "conflicts"),
    ],
)
def test_contradictory_targets_and_bad_fixed_values_are_refused_by_name(client, body, field, text):
    r = client.post("/design", json=body)
    assert r.status_code == 422, r.text
    d = r.json()["detail"]
    assert d["field"] == field and text in d["message"], d


def test_unreachable_targets_get_a_reason_and_no_pretend_ranking(client):
    r = client.post("/design", json={"target_YS": 990, "target_UTS": 995, "pop_size": 40, "n_gen": 20})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["candidates"] == [] and d["reason"], d
    assert "unreachable" in d["reason"] or "no feasible recipe" in d["reason"]
    assert all(c["p_hit"] < 0.05 for c in d["closest"])


def test_recipes_are_ordered_by_p_hit(client):
    d = client.post("/design", json={**ACTION_PLAN, "pop_size": 40, "n_gen": 30}).json()
    p = [round(c["p_hit"], 2) for c in d["candidates"] if c["in_domain"]]
    assert len(p) >= 2 and p == sorted(p, reverse=True), p


def test_predict_gives_units_flags_missing_inputs_and_ignores_measured_labels(client):
    cards = demo_records(4)
    cards[1]["Mg"] = ""  # a blank element most training cards hold
    cards[2]["YS (MPa)"], cards[2]["UTS (MPa)"] = "500", "100"  # measured labels that contradict: not an input
    r = client.post("/predict", json={"cards": cards})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["units"] == {"YS": "MPa", "UTS": "MPa", "FractureEL": "%"}
    assert d["results"][0]["predictions"]["YS"]["unit"] == "MPa"
    blank = d["results"][1]["predictions"]["YS"]
    assert blank["in_domain"] is False and "Mg blank" in blank["domain_reason"], blank
    labelled = d["results"][2]
    assert labelled["rejected_reason"] == "" and labelled["predictions"]["YS"]["pred"] is not None
    for res in d["results"]:
        for p in res["predictions"].values():
            assert bool(p["in_domain"]) == (p["domain_reason"] == ""), p
