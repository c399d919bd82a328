"""The explanation on fabricated profiles: grouping, ranking, shares, noise, the headline."""

from __future__ import annotations

import json

import pytest

from faceperf.bench.explain.diff import Change, explain, ms

STEADY = [1.0, 1.0, 1.0, 1.0]  # ms per call: no spread


def _reference(fab):
    return fab.profile(
        [
            fab.node("stem", "Conv", STEADY, shape=(1, 64, 80, 80)),
            fab.node("body", "Conv", [2.0] * 4, shape=(1, 64, 40, 40)),
            fab.node("relu", "Relu", [0.5] * 4, shape=(1, 64, 40, 40)),
            fab.node("head", "Gemm", [0.2] * 4, shape=(1, 10)),
        ]
    )


def _inserted(fab, name: str, op: str = "Conv", ms_per_call: float = 3.0):
    return fab.node(name, op, [ms_per_call] * 4, shape=(1, 64, 80, 80), weight=(64, 64, 1, 1))


def test_consecutive_new_nodes_of_one_operator_read_as_one_line(fab):
    reference = _reference(fab)
    nodes = list(reference.nodes)
    candidate = fab.profile([nodes[0], *(_inserted(fab, f"slow{i}") for i in range(3)), *nodes[1:]])
    explanation = explain(reference, candidate)
    new = [line for line in explanation.ranked if line.change is Change.NEW]
    assert len(new) == 1
    (line,) = new
    assert line.nodes == ("slow0", "slow1", "slow2")
    assert line.after == "stem"
    assert line.describe() == "3 new Conv [1x64x80x80] after stem"
    assert line.delta_ms == pytest.approx(9.0)
    assert explanation.ranked[0] is line
    assert line.share == pytest.approx(1.0)


def test_new_nodes_in_two_regions_or_of_two_operators_are_separate_lines(fab):
    reference = _reference(fab)
    stem, body, relu, head = reference.nodes
    candidate = fab.profile(
        [
            stem,
            _inserted(fab, "a0"),
            _inserted(fab, "act", op="Relu", ms_per_call=0.5),
            _inserted(fab, "a1"),
            body,
            relu,
            _inserted(fab, "b0", ms_per_call=1.0),
            head,
        ]
    )
    explanation = explain(reference, candidate)
    new = [line.describe() for line in explanation.ranked if line.change is Change.NEW]
    assert new == [
        "2 new Conv [1x64x80x80] after stem",
        "1 new Conv [1x64x80x80] after relu",
        "1 new Relu [1x64x80x80] after stem",
    ]


def test_gone_nodes_are_grouped_on_the_reference_side_and_save_time(fab):
    reference = _reference(fab)
    stem, body, _, head = reference.nodes
    explanation = explain(reference, fab.profile([stem, body, head]))
    (gone,) = [line for line in explanation.ranked if line.change is Change.GONE]
    assert gone.describe() == "1 gone Relu [1x64x40x40] after body"
    assert gone.delta_ms == pytest.approx(-0.5)
    assert explanation.ranked[-1] is gone  # it saves the most: ranked last
    assert gone.share is None  # the candidate is faster: no slowdown to share


def test_lines_rank_by_added_time_and_their_shares_add_up(fab):
    reference = _reference(fab)
    head = reference.nodes[-1]
    candidate = fab.profile(
        [
            fab.node("stem", "Conv", [1.5] * 4, shape=(1, 64, 80, 80)),
            fab.node("body", "Conv", [4.0] * 4, shape=(1, 64, 40, 40)),
            fab.node("relu", "Relu", [0.4] * 4, shape=(1, 64, 40, 40)),
            head,
            fab.node("extra", "Gemm", [1.0] * 4, shape=(1, 10)),
        ]
    )
    explanation = explain(reference, candidate)
    assert [line.nodes[0] for line in explanation.ranked] == [
        "body",
        "extra",
        "stem",
        "head",
        "relu",
    ]
    slowdown = explanation.slowdown_ms
    assert slowdown == pytest.approx(2.0 + 1.0 + 0.5 - 0.1)
    assert [line.share for line in explanation.ranked[:3]] == pytest.approx(
        [2.0 / slowdown, 1.0 / slowdown, 0.5 / slowdown]
    )
    # Every node is in one line, so the lines split the slowdown exactly.
    assert sum(line.share for line in explanation.ranked) == pytest.approx(1.0)
    assert explanation.ratio == pytest.approx(candidate.total_ms / reference.total_ms)


def test_a_change_within_the_per_call_spread_does_not_stand_out(fab):
    # 'body' wanders by 0.4 ms from call to call (interquartile range): a 0.3 ms shift of its
    # median is within that, a 0.6 ms one is not.
    wandering = [1.6, 1.8, 2.2, 2.4, 2.0, 2.0, 1.8, 2.2]
    reference = fab.profile([fab.node("body", "Conv", wandering)])
    near = fab.profile([fab.node("body", "Conv", [v + 0.3 for v in wandering])])
    far = fab.profile([fab.node("body", "Conv", [v + 0.6 for v in wandering])])
    (line,) = explain(reference, near).ranked
    assert line.noise_ms == pytest.approx(0.4)
    assert not line.stands_out
    assert explain(reference, far).ranked[0].stands_out


def test_a_change_beyond_its_spread_but_under_half_a_percent_of_the_total_does_not_count(fab):
    # 'tiny' is steady to the microsecond; 4 µs more is beyond its spread, but 0.5 % of this
    # 10 ms model is 50 µs.
    big = fab.node("big", "Conv", [10.0] * 4)
    reference = fab.profile([big, fab.node("tiny", "Add", [0.003] * 4)])
    candidate = fab.profile([big, fab.node("tiny", "Add", [0.007] * 4)])
    tiny = next(line for line in explain(reference, candidate).ranked if line.nodes == ("tiny",))
    assert tiny.delta_ms > tiny.noise_ms
    assert tiny.floor_ms == pytest.approx(0.050015)
    assert not tiny.stands_out
    assert "no operation stands out" in explain(reference, candidate).headline()


def test_noise_is_at_least_the_profilers_resolution_per_node(fab):
    # Steady to the microsecond on both sides: a 1 µs difference is the trace's rounding.
    reference = fab.profile([fab.node("tiny", "Add", [0.003] * 4)])
    candidate = fab.profile([fab.node("tiny", "Add", [0.004] * 4)])
    assert not explain(reference, candidate).ranked[0].stands_out


def test_the_headline_names_the_first_culprit_and_its_part_of_the_slowdown(fab):
    reference = _reference(fab)
    nodes = list(reference.nodes)
    candidate = fab.profile([nodes[0], *(_inserted(fab, f"slow{i}") for i in range(3)), *nodes[1:]])
    headline = explain(reference, candidate).headline()
    ratio = (reference.total_ms + 9.0) / reference.total_ms
    assert headline == (
        f"m/optimized x{ratio:.2f} (profiled): 3 new Conv [1x64x80x80] after stem: "
        "+9.00 ms of +9.00 ms"
    )


def test_an_unchanged_candidate_has_no_culprit(fab):
    reference = _reference(fab)
    headline = explain(reference, reference).headline()
    assert "no operation stands out" in headline
    assert headline.startswith("m/optimized x1.00 (profiled)")


def test_the_table_shows_the_top_lines_and_sums_the_rest(fab):
    reference = _reference(fab)
    nodes = list(reference.nodes)
    candidate = fab.profile([nodes[0], _inserted(fab, "slow0"), *nodes[1:]])
    lines = explain(reference, candidate, top=2).lines()
    assert lines[0] == explain(reference, candidate).headline()
    rows = [line for line in lines if line.startswith("| ")]
    assert rows[0].startswith("| # | operation |")
    assert rows[1].startswith("| 1 | 1 new Conv [1x64x80x80] after stem | 0.000 | 3.000 | +3.00 |")
    assert rows[1].endswith("| 100 % | yes |")
    assert rows[-1].startswith("| | 3 more line(s) |")
    assert any("1 new, 0 gone" in line for line in lines)


def test_the_json_holds_every_line_and_the_rule(fab):
    reference = _reference(fab)
    nodes = list(reference.nodes)
    candidate = fab.profile([nodes[0], _inserted(fab, "slow0"), *nodes[1:]])
    doc = json.loads(json.dumps(explain(reference, candidate, top=1).to_json()))
    assert doc["label"] == "m/optimized"
    assert len(doc["lines"]) == 5
    assert doc["lines"][0]["change"] == "new"
    assert doc["lines"][0]["nodes"] == ["slow0"]
    assert doc["matched"] == {"name": 4, "shapes": 0, "name, shapes changed": 0}
    assert doc["new"] == 1 and doc["gone"] == 0
    assert doc["slowdown_ms"] == pytest.approx(3.0)
    assert "interquartile" in doc["noise_rule"]


def test_a_pair_matched_by_shapes_says_its_old_name(fab):
    reference = fab.profile([fab.node("old", "Conv", [1.0] * 4)])
    candidate = fab.profile([fab.node("new", "Conv", [2.0] * 4)])
    (line,) = explain(reference, candidate).ranked
    assert line.describe() == "Conv new (was old) [1x8x4x4]"


@pytest.mark.parametrize(
    ("value", "text"), [(31.04, "+31.0"), (1.254, "+1.25"), (-0.0421, "-0.042"), (0.0, "+0.000")]
)
def test_durations_get_the_digits_their_size_deserves(value, text):
    assert ms(value) == text


def test_top_must_be_positive(fab):
    with pytest.raises(ValueError):
        explain(_reference(fab), _reference(fab), top=0)
