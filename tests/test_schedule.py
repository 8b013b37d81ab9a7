import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloy_hydra import schedule
from alloy_hydra.errors import ScheduleError

temps = st.floats(min_value=20, max_value=650, allow_nan=False).map(lambda t: round(t, 2))
times = st.floats(min_value=1, max_value=1e6, allow_nan=False).map(lambda t: round(t, 1))
steps = st.lists(st.builds(schedule.Step, temps, times), min_size=0, max_size=4)


@given(steps)
def test_canonical_round_trips(s):
    assert schedule.parse(schedule.canonical(s)) == s
    assert schedule.canonical(schedule.parse(schedule.canonical(s))) == schedule.canonical(s)


@given(
    st.integers(100, 600),
    st.integers(1, 48),
    st.sampled_from(["C/{h}h", " °C / {h} h", "ºC/{m}min", "C x {h}hr", "C for {h} hours"]),
)
def test_lab_formats_agree_with_canonical(temp, hours, fmt):
    text = f"{temp}" + fmt.format(h=hours, m=hours * 60)
    assert schedule.parse(text) == [schedule.Step(temp, hours * 3600.0)]


@given(st.integers(100, 600), st.integers(1, 48))
def test_time_first_and_fahrenheit_and_kelvin(temp, hours):
    assert schedule.parse(f"{hours}h @ {temp}C") == [schedule.Step(temp, hours * 3600.0)]
    f = schedule.parse(f"{temp * 9 / 5 + 32}F x {hours}hr")[0]
    k = schedule.parse(f"{temp + 273.15}K/{hours}h")[0]
    assert math.isclose(f.temp_C, temp, abs_tol=1e-9) and math.isclose(k.temp_C, temp, abs_tol=1e-9)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("540/18000 + 490/86400", "540/18000 + 490/86400"),
        ("540C/5h + 490 °C / 24 h", "540/18000 + 490/86400"),
        ("1004F x 5hr", "540/18000"),
        ("350/2h", "350/7200"),
        ("  540 ºC / 5 h ; 490C/1d ", "540/18000 + 490/86400"),
        ("30 min at 350 C then 200C/2h", "350/1800 + 200/7200"),
        ("none", ""),
        ("", ""),
        ("-", ""),
    ],
)
def test_examples(text, expected):
    assert schedule.canonical(schedule.parse(text)) == expected


@settings(max_examples=300)
@given(st.text(max_size=30))
def test_garbage_raises_only_schedule_error(text):
    try:
        schedule.parse(text)
    except ScheduleError:
        pass


@pytest.mark.parametrize(
    "bad", ["abc", "540/", "540C/5C", "540/5h/3", "540/-5", "900/10", "540/5 parsecs", "540/18000 + ", "hot rolled"]
)
def test_rejects_garbage(bad):
    with pytest.raises(ScheduleError):
        schedule.parse(bad)


def test_features():
    f = schedule.features(schedule.parse("540/18000 + 490/86400"), "homog", threshold_C=520)
    assert f["homog_steps"] == 2 and f["homog_time_total_s"] == 104400
    assert f["homog_temp_max_C"] == 540 and f["homog_time_at_ge_520C_s"] == 18000
    assert math.isclose(f["homog_T_time_weighted_C"], (540 * 18000 + 490 * 86400) / 104400)
    empty = schedule.features([], "recryst", ambient_C=25)
    assert empty == {
        "recryst_steps": 0,
        "recryst_time_total_s": 0,
        "recryst_temp_max_C": 25,
        "recryst_T_time_weighted_C": 25,
    }


def test_schedules_read_as_a_metallurgist_writes_them():
    from alloy_hydra import schedule

    assert schedule.human(schedule.parse("545/9000 + 490/86400")) == "545 °C × 2.5 h + 490 °C × 24 h"
    assert schedule.human(schedule.parse("500/10 + 350/1800")) == "500 °C × 10 s + 350 °C × 30 min"
    assert schedule.human(schedule.parse("none")) == ""
