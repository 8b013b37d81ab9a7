import numpy as np
import pandas as pd
from conftest import compose

from alloy_hydra import clean, demo, ground_truth
from alloy_hydra.io import read_cards


def test_regeneration_reproduces_committed_file_byte_for_byte(tmp_path):
    out = tmp_path / "demo.csv"
    demo.main(["--out", str(out)])
    assert out.read_bytes() == demo.demo_path().read_bytes()


def test_other_seed_gives_other_cards_of_the_same_kind(tmp_path):
    """Another seed draws other cards (not a copy) of the same schema and size, labelled by the same ground truth."""
    import io

    other = pd.read_csv(io.StringIO(demo.to_csv(demo.make_cards(seed=8))), dtype=str, keep_default_na=False)
    shipped = pd.read_csv(demo.demo_path(), dtype=str, keep_default_na=False)
    assert list(other.columns) == list(shipped.columns) and abs(len(other) - len(shipped)) < 0.2 * len(shipped)
    assert (other["YS (MPa)"].head(50) != shipped["YS (MPa)"].head(50)).mean() > 0.5


def card(alloy_comp, cold=0.0, recryst="345/7200", homog="540/18000", casting="DC", grain=None):
    row = {el: 0.0 for el in demo.ELEMENTS}
    row.update(alloy_comp, cold_reduction_pct=cold, recryst_schedule=recryst, homog_schedule=homog, casting=casting)
    if grain is not None:
        row["grain_size_um"] = grain
    return pd.DataFrame([row])


AA5052 = dict(Mg=2.5, Cr=0.25, Fe=0.3, Si=0.1, Mn=0.05)
AA5083 = dict(Mg=4.45, Mn=0.7, Cr=0.15, Fe=0.3, Si=0.2)


def test_handbook_magnitudes():
    o5052 = ground_truth.properties(card(AA5052, cold=60, recryst="345/7200")).iloc[0]
    o5083 = ground_truth.properties(card(AA5083, cold=60, recryst="345/7200")).iloc[0]
    h38 = ground_truth.properties(card(AA5052, cold=75, recryst="")).iloc[0]
    assert 70 <= o5052.YS <= 110 and 170 <= o5052.UTS <= 215 and o5052.FractureEL >= 20  # 5052-O ≈ 90 / 195
    assert 125 <= o5083.YS <= 165 and 270 <= o5083.UTS <= 320  # 5083-O ≈ 145 / 290
    assert h38.YS > 2.5 * o5052.YS and h38.FractureEL < 8 and h38.YPE < 0.05  # H38: strong, little EL
    assert o5083.YPE > o5052.YPE > 0  # Lüders grows with Mg


def test_physics_directions():
    base = dict(AA5083)
    ys = lambda **kw: ground_truth.properties(card(**kw)).iloc[0]
    assert ys(alloy_comp={**base, "Mg": 5.0}).YS > ys(alloy_comp=base).YS
    assert ys(alloy_comp=base, grain=10).YS > ys(alloy_comp=base, grain=40).YS
    assert ys(alloy_comp=base, grain=10).YPE > ys(alloy_comp=base, grain=40).YPE
    cold = [ys(alloy_comp=base, cold=c, recryst="") for c in (10, 40, 70)]
    assert cold[0].YS < cold[1].YS < cold[2].YS and cold[0].FractureEL > cold[1].FractureEL > cold[2].FractureEL
    annealed = ys(alloy_comp=base, cold=70, recryst="350/7200")
    assert annealed.YS < cold[2].YS - 100  # recrystallisation annealing undoes work hardening
    p = ground_truth.properties(pd.concat([card(base, cold=c) for c in (0, 30, 80)]), noise=True)
    assert (p.UniformEL <= p.FractureEL).all() and (p.YPE >= 0).all()


def test_labels_follow_the_ground_truth_through_cleaning():
    """Cleaned demo cards, scored by the ground truth (noise off), reproduce their labels within the noise."""
    cfg = compose()
    res = clean.clean(read_cards(clean.data_path(cfg.data)), cfg.data, cfg.chem_window, cfg.cleaning, "demo")
    master, truth = res.master, ground_truth.properties(res.master)
    swapped = master["source_row"].isin([c["source_row"] for c in res.report["changes"]])
    for name, sd in ground_truth.NOISE_SD.items():
        ok = master[name].notna() & ~swapped
        resid = (master.loc[ok, name] - truth.loc[ok, name]).to_numpy()
        assert ok.sum() > 50 and abs(np.median(resid)) < sd, name
        assert np.std(resid) < (2.5 * sd if name != "YPE" else 0.2), name
