"""Check a model against newly measured cards: error drift, data drift, domain, recommended recipes.

    python -m alloy_hydra.monitor MODEL new_cards.csv [--registry models] [--out DIR]
        [--recommendations RUN/recommendations.csv] [--query-log models/queries.sqlite]
        [--max-mae-increase 0.15] [--min-cards 10]

MODEL is a run dir, or a registry version: YS@champion, YS:3, YS. The cards are in the model's data schema
(the lab's file); they are cleaned with the model's own rules. Writes monitor_report.json and
monitor_history.png into --out (default outputs/monitor/<time>_<target>/), and appends a row to the history
(monitor_history.csv beside the registry, or beside the run dir).

Exit codes: 0 fine, 3 retraining recommended (MAE rose by more than monitor.max_mae_increase, the bootstrap
interval agreeing, on at least monitor.min_cards cards), 2 bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .. import monitor
from ..config import MonitorConfig, RegistryConfig
from ..errors import AlloyHydraError
from ..expr import ModelFileError
from ..io import read_cards, write_json


def print_report(report: dict, console: Console) -> None:
    e = report["error"]
    unit = report["unit"]
    console.print(
        f"[bold]{report['model']}[/bold] on {report['source']}: {report['rows_in']} cards = "
        f"{report['rows_scored']} scored + {report['rows_unlabelled']} without {report['target']} + "
        f"{report['rows_rejected']} rejected"
    )
    if e["n_cards"]:
        ci = e["change_ci_pct"]
        console.print(
            f"  MAE {e['mae']:.3g} {unit} (RMSE {e['rmse']:.3g}, bias {e['bias']:+.3g}) vs recorded "
            + (f"{e['reference_mae']:.3g} {unit}" if e["reference_mae"] else "—")
            + (f": {e['change_pct']:+.0f} % [{ci[0]:+.0f} … {ci[1]:+.0f} %]" if ci else "")
        )
    console.print(f"  {'[red]' if e['drift'] else ''}{e['verdict']}{'[/red]' if e['drift'] else ''}")
    if report["out_of_domain_share"] is not None:
        console.print(f"  out of the applicability domain: {100 * report['out_of_domain_share']:.0f} % of the cards")
    drifting = [d for d in report["data_drift"] if d["drift"]]
    if drifting:
        table = Table(title="inputs that drifted", title_justify="left")
        for c in ("input", "test", "shift"):
            table.add_column(c, overflow="fold")
        for d in drifting:
            if d["kind"] == "number":
                shift = f"{d['shift_sd']:.2f} sd (mean {d['train_mean']:.3g} → {d['new_mean']:.3g})"
                table.add_row(d["feature"], f"KS p={d['p_value']:.1e}", shift)
            else:
                table.add_row(d["feature"], f"χ² p={d['p_value']:.1e}", f"JS {d['js']:.2f} {d['new_shares']}")
        console.print(table)
    else:
        console.print(f"  no input drifted ({len(report['data_drift'])} checked)")
    r = report["recommended"]
    if r["n"]:
        hit = "—" if r["hit_rate"] is None else f"{100 * r['hit_rate']:.0f} %"
        console.print(
            f"  recommended recipes cast and measured: {r['n']}; predicted vs measured MAE {r['mae']:.3g} {unit}, "
            f"bias {r['bias']:+.3g}, within 1σ {100 * r['within_1sigma']:.0f} %, measured within tolerance {hit}"
        )


def resolve(spec: str, registry: str) -> monitor.Subject:
    path = Path(spec)
    if path.is_dir():
        return monitor.from_run(path)
    return monitor.from_registry(registry, spec)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alloy_hydra.monitor", description=__doc__.splitlines()[0])
    ap.add_argument("model", help="run dir, or registry TARGET[@ALIAS | :VERSION]")
    ap.add_argument("cards", help="newly measured cards (CSV, the model's data schema)")
    ap.add_argument("--registry", default=RegistryConfig.path)
    ap.add_argument("--out", default=None)
    ap.add_argument("--history", default=None, help="history CSV (default: beside the registry or the run dir)")
    ap.add_argument("--recommendations", default=None, help="a run's recommendations.csv the cards were cast from")
    ap.add_argument("--query-log", default=None, help="the service's query log (default: <registry>/queries.sqlite)")
    defaults = MonitorConfig()
    for f in dataclasses.fields(MonitorConfig):
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)), default=None)
    args = ap.parse_args(argv)
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(MonitorConfig)}
    settings = dataclasses.replace(defaults, **{k: v for k, v in given.items() if v is not None})
    console = Console()
    try:
        subject = resolve(args.model, args.registry)
        raw = read_cards(args.cards, delimiter=subject.config.data.delimiter)
        query_log = Path(args.query_log) if args.query_log else Path(args.registry) / "queries.sqlite"
        report = monitor.check(subject, raw, settings, args.cards, query_log, args.recommendations)
    except (AlloyHydraError, ModelFileError) as err:
        console.print(f"[red]error:[/red] {err}")
        return 2
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = Path(args.out or Path("outputs") / "monitor" / f"{stamp}_{report['target']}")
    out.mkdir(parents=True, exist_ok=True)
    report["settings"] = dataclasses.asdict(settings)
    write_json(out / "monitor_report.json", report)
    history = Path(args.history) if args.history else subject.history
    table = monitor.append_history(history, report)
    monitor.plot_history(table, history.with_suffix(".png"))
    shutil.copyfile(history.with_suffix(".png"), out / "monitor_history.png")
    print_report(report, console)
    console.print(f"report: {out / 'monitor_report.json'}   history: {history}")
    if report["retrain"]:
        console.print(f"[red]retraining recommended[/red] (exit {monitor.RETRAIN_EXIT})")
        return monitor.RETRAIN_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
