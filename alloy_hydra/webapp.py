"""The design assistant's web page (Streamlit): started by `python -m alloy_hydra.ui`, which runs
`streamlit run` on this file. The registry comes from ALLOY_HYDRA_REGISTRY (default: models). The page calls
alloy_hydra.assistant, the functions the service and run.py use, and writes every design and prediction to the
service's query log (alloy_hydra.answers: the same records, so the monitor joins measured outcomes to them)."""

from __future__ import annotations

import dataclasses
import os
import secrets
import tempfile
import uuid
from pathlib import Path

import pandas as pd
import streamlit as st

from alloy_hydra import answers, plots
from alloy_hydra import design as design_mod
from alloy_hydra.assistant import (
    REQUEST_TARGETS,
    TARGET_LIMITS,
    Assistant,
    DesignRequest,
    RequestError,
    summary_table,
)
from alloy_hydra.config import RegistryConfig
from alloy_hydra.errors import AlloyHydraError
from alloy_hydra.io import read_cards
from alloy_hydra.ui import REGISTRY_ENV, TOKEN_ENV

LABELS = {"YS": "Target YS (MPa)", "UTS": "Target UTS (MPa)", "FractureEL": "Target elongation (%)"}
# the request's field names in the page's words (an error names what the user sees, not the API's field)
WORDS = {
    **{k: LABELS[t] for k, t in REQUEST_TARGETS.items()},
    **{"min_" + k[7:]: f"Minimum {t}" for k, t in REQUEST_TARGETS.items()},
    "alloy_family": "Alloy family",
    "casting": "Casting",
    "max_cost": "Max cost index",
    "targets": "Targets",
    "request": "Request",
    "registry": "Model registry",
    "cards": "Data cards",
}


@st.cache_resource
def query_log(path: str) -> answers.QueryLog:
    return answers.QueryLog(path)  # opened once per registry (it creates its table and prunes old rows on opening)


def refused(assistant: Assistant, endpoint: str, err: RequestError, inputs) -> None:
    """A refused request: said on the page in words, logged as the service logs its refusals."""
    qid = uuid.uuid4().hex
    error = answers.refusal(err.field, assistant.public(str(err)), qid)
    logged(assistant, endpoint, err.status, inputs, {"error": error}, qid=qid)
    st.error(in_words(err))


def logged(assistant: Assistant, endpoint: str, status: int, inputs, outputs, versions=None, qid=None) -> str:
    """The page's query in the registry's query log, as the service writes it (strict JSON); its query id."""
    qid = qid or uuid.uuid4().hex
    log = query_log(str(assistant.registry.path / "queries.sqlite"))
    log.add(qid, endpoint, status, inputs, versions or {}, outputs)
    return qid


def in_words(err: RequestError) -> str:
    """A refused request as the page says it: the field's label, then the reason without the field's name."""
    message = str(err).removeprefix(f"{err.field}: ")
    label = WORDS.get(err.field, WORDS.get(err.field.split(".")[0], err.field))
    return f"{label}: {message}"


DEFAULTS = {"YS": 260.0, "UTS": 320.0, "FractureEL": 12.0}  # the action plan's question


@st.cache_resource
def get_assistant(path: str) -> Assistant:
    return Assistant(path)


def _design_form(options: dict) -> DesignRequest | None:
    """The targets, family, casting, cost cap and length of the list; the request once submitted."""
    available = [t for t in REQUEST_TARGETS.values() if t in options["targets"]]
    with st.form("design"):
        cols = st.columns(len(available) or 1)
        values = {}
        for c, t in zip(cols, available):
            use = c.checkbox(f"design for {t}", value=True, key=f"use_{t}")
            lo, hi = TARGET_LIMITS[t]  # the API's limits: a target above lo, at most hi
            step = 5.0 if hi > 100 else 0.5
            v = c.number_input(LABELS[t], min_value=lo + step, max_value=hi, value=DEFAULTS[t], step=step, key=f"t_{t}")
            if use:
                values[t] = v
        a, b, c = st.columns(3)
        families = ["any", *options["families"]]
        family = a.selectbox(
            "Alloy family", families, index=families.index("AA5xxx") if "AA5xxx" in families else 0, key="family"
        )
        castings = ["any", *options["castings"]]
        casting = b.selectbox("Casting", castings, index=castings.index("DC") if "DC" in castings else 0, key="casting")
        max_cost = c.number_input("Max cost index (price / price of Al)", 1.0, 100.0, 2.0, 0.1, key="max_cost")
        top = st.slider("Recipes to show", 1, 50, 10, key="top")
        submitted = st.form_submit_button("Find alloys")
    if not submitted:
        return None
    return DesignRequest(
        targets=values,
        family=None if family == "any" else family,
        casting=None if casting == "any" else casting,
        max_cost=max_cost,
        top=top,
    )


def _search(assistant: Assistant, req: DesignRequest) -> bool:
    """The service's own design call, with a progress bar; the answer (or the refusal) goes to the query log.
    False when refused."""
    bar = st.progress(0.0, text="searching recipes ...")
    inputs = {**dataclasses.asdict(req), "via": "page"}
    try:
        result = assistant.design(
            req, progress=lambda done, total: bar.progress(done / total, text=f"NSGA-II generation {done}/{total}")
        )
    except RequestError as err:
        bar.empty()
        refused(assistant, answers.DESIGN, err, inputs)
        return False
    bar.progress(1.0, text="done")
    qid = uuid.uuid4().hex
    record = answers.design_record(answers.design(result, qid))
    logged(assistant, answers.DESIGN, 200, inputs, record, result["versions"], qid)
    st.session_state["result"], st.session_state["query_id"] = result, qid
    return True


def _show_design(assistant: Assistant, result: dict) -> None:
    if result["reason"]:  # no pretend ranking: say why, show the closest recipes as such
        st.warning(result["reason"])
        if len(result["candidates"]):
            st.caption("The closest recipes found (not expected to hit the targets):")
            st.dataframe(summary_table(result).head(3), hide_index=True, key="closest")
        return
    top = result["candidates"]
    st.success(
        f"{len(top)} recipes (of {result['n_feasible']} feasible) for "
        + ", ".join(f"{t} {v:g} {result['units'][t]}" for t, v in result["targets"].items())
        + " — models " + ", ".join(result["versions"].values())
    )  # fmt: skip
    st.dataframe(summary_table(result), hide_index=True, key="results")
    st.caption(f"query id {st.session_state.get('query_id', '')}: put it in the cards you measure (query_id column) "
               "and the monitor compares them with these predictions")  # fmt: skip
    tol = dict(assistant.base.design.tolerance)
    figure, _ = st.columns([3, 2])
    figure.pyplot(plots.candidates_vs_cards(top, result["master"], result["targets"], tol, result["units"]))
    d1, d2 = st.columns(2)
    written = design_mod.with_units(top, result["units"], result["elements"])
    d1.download_button("Download recommendations (CSV)", written.to_csv(index=False), "recommendations.csv", "text/csv")
    d2.download_button(
        "Download recipe cards (CSV)",
        result["recommended_cards"].to_csv(index=False),
        "recommended_cards.csv",
        "text/csv",
    )


def design_tab(assistant: Assistant, options: dict) -> None:
    req = _design_form(options)
    if req is not None and not _search(assistant, req):
        return  # the refusal is on screen, not an earlier answer below it
    result = st.session_state.get("result")
    if result is not None:
        _show_design(assistant, result)


def predict_tab(assistant: Assistant, options: dict) -> None:
    upload = st.file_uploader("Data cards (CSV, in the models' data schema)", type=["csv"], key="cards")
    if upload is None:
        return
    version = assistant.version(options["targets"][0])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / upload.name
        path.write_bytes(upload.getvalue())
        try:
            raw = read_cards(path, delimiter=version.config.data.delimiter)
            table, used = assistant.predict(raw)
        except RequestError as err:
            refused(assistant, answers.PREDICT, err, {"file": upload.name, "via": "page"})
            return
        except AlloyHydraError as err:  # the file itself (as the service answers a card it cannot read: 422, cards)
            err = RequestError("cards", str(err).replace(str(path), upload.name))
            refused(assistant, answers.PREDICT, err, {"file": upload.name, "via": "page"})
            return
    inputs = {"file": upload.name, "n_cards": len(raw), "via": "page"}
    qid = uuid.uuid4().hex
    answer = answers.predict(table, used, assistant.units(list(used)), qid)
    logged(assistant, answers.PREDICT, 200, inputs, answer, used, qid)
    ids = [c for c in version.config.data.id_columns if c in table][:3]
    shown = table[["source_row", *ids]].rename(columns={"source_row": "row"})
    for t in used:
        shown[t] = ["—" if pd.isna(p) else f"{p:.1f} ± {s:.1f}" for p, s in zip(table[f"{t}_pred"], table[f"{t}_std"])]
        shown[f"{t} in domain"] = table[f"{t}_in_domain"]
        shown[f"{t} why not"] = table[f"{t}_domain_reason"]
    shown["rejected"] = table["rejected_reason"]
    st.write(
        f"{len(table)} cards, {int((table['rejected_reason'] == '').sum())} scored — models {', '.join(used.values())}"
    )
    st.dataframe(shown, hide_index=True)
    st.download_button("Download predictions (CSV)", table.to_csv(index=False), "predictions.csv", "text/csv")


def registry() -> str:
    return os.environ.get(REGISTRY_ENV, RegistryConfig.path)


def signed_in() -> bool:
    """With ALLOY_HYDRA_TOKEN set (required off loopback, as for the service), the page asks for it first."""
    token = os.environ.get(TOKEN_ENV)
    if not token:
        return True
    given = st.text_input("Access token", type="password", key="token")
    if given and secrets.compare_digest(given.encode(), token.encode()):
        return True
    if given:
        st.error("That token is not valid.")
    return False


def main() -> None:
    st.set_page_config(page_title="alloy_hydra design assistant", layout="wide")
    st.title("Aluminium alloy design assistant")
    if not signed_in():
        st.stop()
    assistant = get_assistant(registry())
    try:
        options = assistant.options()
        in_use = assistant.in_use()
    except AlloyHydraError as err:
        st.error(str(err))
        st.stop()
    if not options["targets"]:
        st.error(
            f"No published models in {registry()!r}. Build the demo registry with "
            "`python -m alloy_hydra.registry demo` (a few minutes), or publish your own runs."
        )
        st.stop()
    with st.sidebar:
        st.subheader("Models in use")
        st.dataframe(
            pd.DataFrame(in_use).T[["ref", "method", "members", "holdout_r2", "holdout_mae", "unit"]],
            key="models",
        )
        st.caption(f"registry: {Path(registry()).name}")
    design, predict = st.tabs(["Design", "Predict"])
    with design:
        design_tab(assistant, options)
    with predict:
        predict_tab(assistant, options)


main()
