"""The report's text and figures: the markdown rendered from summary.json alone by a template that computes
nothing, and the figures checked on the artists they drew.

The report of the hand-written profile (tests/report_support.py) must print its numbers formatted by
hand, fail on any key the summary lacks and print n/a where it holds null; its figures must have one
row of panels per economy, bars on their own scale, the intervals over seeds drawn, and every branch
told apart.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import jinja2
import matplotlib.pyplot as plt
import pytest
import yaml
from jinja2 import nodes
from matplotlib.container import BarContainer

from pipeline.analysis.report import FIGURES, markdown
from pipeline.analysis.report.figures import _grid_panel
from pipeline.orchestration.plan import WorkflowPlan

from conftest import ROOT
from report_support import HALF_SD1, HAND_WORKFLOW, T975_2, report  # noqa: F401 (a fixture)


# ---------------------------------------------------------------------------------------- the markdown
def test_the_markdown_prints_the_summarys_numbers_formatted_by_hand(report):
    lines = report["markdown"].splitlines()
    expected = [
        "Economies and seeds: open (seeds 0, 1, 2), closed (seeds 3). Curriculum: consumers (4 episodes: consumer), "
        "government (4 episodes: consumer+firm+government); the first 1 stage(s) are shared by every branch. "
        "Evaluation: 2 episodes x 2 economies per policy and seed. Best responses: 4 episodes per probe, evaluated "
        "over 2 episodes; probes per type: consumer: pg, ppo, power, agent_pg; firm: pg, ppo, power; "
        "government: pg, ppo, power.",
        "The closed economy has one seed (3): no statement over seeds is possible there; its numbers are that "
        "seed's, and its intervals are evaluation noise only.",
        "| learned | 131.0 | [128.5, 133.5] | 1.00 | 3 | 130.0 [129.0, 131.0] | 131.0 [130.0, 132.0] | "
        "132.0 [131.0, 133.0] |",
        "| fixed 0% income / 40% corporate | 151.0 | [148.5, 153.5] | 1.00 | 3 | 150.0 [149.0, 151.0] | "
        "151.0 [150.0, 152.0] | 152.0 [151.0, 153.0] |",
        "- Against every fixed tax of this economy, the income x corporate grid included (the fair comparison), best "
        "fixed 0% income / 40% corporate (151.0 over seeds): difference over seeds -20.00, 95% CI [-20.00, -20.00] "
        "(3 seed(s)): **lower**; ratio of the means 0.868.",
        "| 0% | 40% | no | 151.0 | [148.5, 153.5] | 46.00 | [43.52, 48.48] | 1 of 3 |",
        "| learned | 10.00% | [-14.84%, 34.84%] | 30.00% | [30.00%, 30.00%] | 0.00% / 30.00% | 10.00% / 30.00% | "
        "20.00% / 30.00% |",
        "| consumer | 0 | 1.00 [0.5, 1.50] | 3.00 [2.50, 3.50] | 3.00 (ppo) | 100.0 [90.00, 110.0] | 3.00% | "
        "7.00 [6.50, 7.50] | 6.00 | has power | 2 | 2.00 [1.50, 2.50] | 1.00% |",  # seed 0 deviates with consumer 2 of 4
        "- consumer, seed 1: relative gap undefined: the training gain's 95% interval includes 0.",
        "Machine: Hand CPU; native bf16: yes; training throughput 0.25 s per iteration with 2 thread(s).",
        # the hand tree is no git checkout and has no benchmark records
        "| open seed 2 | this run | n/a | Hand CPU | yes | 0.25 | 0 | n/a |",
        "| closed seed 3 | this run | n/a | Hand CPU | yes | 0.25 | 0 | n/a |",
    ]
    missing = [line for line in expected if line not in lines]
    assert not missing, missing
    for key, text in report["summary"]["definitions"].items():
        assert f"- `{key}`: {text}" in lines


def test_without_a_machine_record_the_summary_holds_null_and_the_text_says_so(report):
    summary = json.loads((report["root"] / "summary.json").read_text())
    assert summary["machine"] == {"cpu_model": "Hand CPU", "native_bf16": True,
                                  "train_throughput_s_per_iteration": 0.25, "threads": 2}
    summary["machine"] = None
    text = markdown.render_markdown(summary)
    assert "Machine: no record (`machine.json`) was written beside these results." in text
    assert re.search(r"DAG wall time n/a s \(earliest benchmarked job start to latest end, 0 jobs\)", text)


@pytest.mark.parametrize("path", [
    ("economies", "open", "welfare", "learned", "every_fixed", "verdict"),
    ("economies", "open", "epsilon", "learned", "consumer", "over_seeds", "worst_relative"),
    ("economies", "open", "tax_grid", "points", 0, "collapsed_seeds"),
    ("economies", "closed", "ablation", "higher_by_seed"),
    ("definitions",),
    ("wall_time_s", "jobs"),
    ("pipelines",),
])
def test_a_number_the_summary_lacks_cannot_appear(report, path):
    summary = json.loads((report["root"] / "summary.json").read_text())
    parent = summary
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(jinja2.UndefinedError, match=str(path[-1])):
        markdown.render_markdown(summary)


def test_a_capped_government_reads_its_comparison_inside_the_cap(report):
    summary = json.loads((report["root"] / "summary.json").read_text())
    assert "fixed taxes it may set itself" not in report["markdown"]  # the hand profile caps no government
    capped = summary["economies"]["open"]["welfare"]["consumer_welfare"]
    capped["within_cap"] = {**capped["equal_rate"], "max_corporate_tax": 0.3}
    lines = markdown.render_markdown(summary).splitlines()
    # consumer-only welfare: the government 60 + s against the best equal rate, fixed 20%, 40 + s at every seed
    assert ("- Against the fixed taxes it may set itself (corporate rate at most 30%; losing here is the learning's "
            "shortfall, not the cap's), best fixed 20% (41.00 over seeds): difference over seeds 20.00, 95% CI "
            "[20.00, 20.00] (3 seed(s)): **higher**; ratio of the means 1.49.") in lines


def test_a_null_in_the_summary_reads_n_a(report):
    summary = json.loads((report["root"] / "summary.json").read_text())
    summary["economies"]["open"]["epsilon"]["learned"]["consumer"]["per_seed"]["0"]["relative"] = None
    lines = markdown.render_markdown(summary).splitlines()
    assert any(line.startswith("| consumer | 0 | 1.00 [0.5, 1.50] | 3.00 [2.50, 3.50] | 3.00 (ppo) | 100.0 [90.00, "
                               "110.0] | n/a |") for line in lines)


# Filters of Jinja that select or join without making a number; the formats are markdown.FILTERS.
SELECTING = {"join", "first", "last", "list", "select", "length"}
ARITHMETIC = (nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow, nodes.Neg, nodes.Pos)


def computations(source: str) -> list[str]:
    """Arithmetic and filters outside the formats that a template's syntax tree holds."""
    tree = markdown.environment().parse(source)
    found = [f"line {n.lineno}: {type(n).__name__}" for n in tree.find_all(ARITHMETIC)]
    found += [f"line {n.lineno}: filter {n.name}" for n in tree.find_all(nodes.Filter)
              if n.name not in markdown.FILTERS and n.name not in SELECTING]
    return found


def test_the_template_computes_nothing():
    env = markdown.environment()
    source = env.loader.get_source(env, markdown.TEMPLATE)[0]
    assert "Best-response gaps" in source  # the shipped template, found as package data
    assert computations(source) == []


@pytest.mark.parametrize("planted", ["{{ x / 10 }}", "{{ -x }}", "{{ xs|sum }}", "{{ x|round }}", "{{ 100 * x }}"])
def test_a_computation_planted_in_a_template_is_caught(planted):
    assert len(computations(planted)) == 1


# ---------------------------------------------------------------------------------------- the figures
def test_best_response_panels_are_per_economy_in_units_of_the_paper_bound_with_intervals_over_seeds(report):
    """Each gain is drawn over the paper's tolerance for its type (bound x |trained reward|): the hand profile's
    consumers have trained reward 200 and the paper's consumer bound is 3%, so 6 is one unit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = report["figures"]["best_response"]
    FigureCanvasAgg(fig).draw()
    axes = fig.axes
    assert len(axes) == 2 * 3  # (open, closed) x (consumer, firm, government)
    for ax in axes:
        assert ax.get_ylabel() and ax.get_yscale() == "symlog"
        assert [line.get_ydata()[0] for line in ax.get_lines() if "paper's bound" in line.get_label()] == [1.0]
        # every bar is visible: at least 5% of the panel's height, tiny closed-economy gains beside large
        # power checks included
        panel = ax.get_window_extent().height
        for bar in ax.patches:
            bottom, top = (ax.transData.transform((0, y))[1] for y in (0, bar.get_height()))
            assert abs(top - bottom) > 0.05 * panel, (ax.get_title(), bar.get_height())
    consumer_open = next(ax for ax in axes if ax.get_title().startswith("open (learned): consumer"))
    pg = next(c for c in consumer_open.containers if isinstance(c, BarContainer))  # pg: gains 1, 5, 2
    unit = 0.03 * 200.0
    assert pg.patches[0].get_height() == pytest.approx(8.0 / 3 / unit)
    segment = pg.errorbar.lines[2][0].get_segments()[0]
    sd = math.sqrt(((1 - 8 / 3) ** 2 + (5 - 8 / 3) ** 2 + (2 - 8 / 3) ** 2) / 2)
    assert [segment[0][1], segment[1][1]] == pytest.approx([(8 / 3 - T975_2 * sd / math.sqrt(3)) / unit,
                                                            (8 / 3 + T975_2 * sd / math.sqrt(3)) / unit])
    assert consumer_open.texts[0].get_text() == "2.67"  # the bar is labelled with the gain itself
    hatches = {p.get_hatch() for p in consumer_open.patches}
    assert hatches == {None, "//", ".."}  # learners, the power check and one agent alone look different


def test_training_curves_tell_every_branch_apart(report):
    for ax in report["figures"]["training_curves"].axes:
        lines = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
        looks = [(str(line.get_color()), str(line.get_linestyle())) for line in lines
                 if line.get_label() != "shared prefix"]
        assert len(set(looks)) == len(looks), ax.get_title()
    open_labels = {line.get_label() for line in report["figures"]["training_curves"].axes[0].get_lines()}
    assert {"learned taxes", "fixed 20%", "fixed 0% income / 40% corporate", "no curriculum"} <= open_labels


def test_the_tax_grid_figure_shows_the_over_seed_welfare_and_the_learned_rates(report):
    axes = [ax for ax in report["figures"]["tax_grid"].axes if ax.images]
    assert len(axes) == 2 * 2  # (open, closed) x (total, consumer-only)
    grid = axes[0].images[0].get_array()  # open, total welfare: corporate (rows) x income (columns)
    assert grid.shape == (2, 3)  # incomes 0/20/40%, corporate 20/40%
    assert grid[1, 0] == pytest.approx(151.0) and grid[0, 1] == pytest.approx(100.0) and grid.mask[0, 0]
    star = next(line for line in axes[0].get_lines() if line.get_marker() == "*")
    assert star.get_xdata()[0] == pytest.approx(0.5)  # learned income 10%: halfway between the 0% and 20% columns
    assert star.get_ydata()[0] == pytest.approx(0.5)  # corporate 30%: halfway between the 20% and 40% rows
    # no cell's text covers a marker at a cell's centre: the text hangs from the cell's top edge
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(report["figures"]["tax_grid"])
    canvas.draw()
    renderer = canvas.get_renderer()
    centre = axes[0].transData.transform((1, 0))  # the (20%, 20%) cell, which has a number
    boxes = [text.get_window_extent(renderer) for text in axes[0].texts if text.get_text()]
    assert boxes and not any(box.contains(*centre) for box in boxes)


def test_the_tax_grid_figure_draws_a_capped_governments_cap_where_the_rate_lies(report):
    summary = json.loads((report["root"] / "summary.json").read_text())
    data = summary["economies"]["open"]
    fig, ax = plt.subplots()
    _grid_panel(fig, ax, data, "welfare_consumer_only", "consumer-only welfare", WorkflowPlan(HAND_WORKFLOW))
    assert not [line for line in ax.get_lines() if "cap" in line.get_label()]  # the hand profile caps nothing
    data["welfare"]["consumer_welfare"]["within_cap"] = {"max_corporate_tax": 0.3}
    fig, ax = plt.subplots()
    _grid_panel(fig, ax, data, "welfare_consumer_only", "consumer-only welfare", WorkflowPlan(HAND_WORKFLOW))
    (cap,) = [line for line in ax.get_lines() if "cap" in line.get_label()]
    assert list(cap.get_ydata()) == pytest.approx([0.5, 0.5])  # 30%: halfway between the 20% and 40% rows
    plt.close("all")


def test_welfare_against_the_equal_rates_has_a_row_per_economy_and_t_intervals(report):
    axes = report["figures"]["welfare_vs_tax"].axes
    assert len(axes) == 2 * 4
    total_open = axes[0]
    assert total_open.get_title().startswith("open: total welfare (3 seeds)")
    fixed = total_open.containers[0]  # the equal rates 20% and 40%: means 100 and 121
    assert list(fixed.lines[0].get_ydata()) == pytest.approx([100.0, 121.0])
    segment = fixed.lines[2][0].get_segments()[1]
    assert [segment[0][1], segment[1][1]] == pytest.approx([121.0 - HALF_SD1, 121.0 + HALF_SD1])


def test_every_figure_is_a_workflow_output_with_a_caption():
    smk = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    listed = re.search(r"^FIGURES = (\[.*?\])", smk, re.M | re.S).group(1)
    assert tuple(yaml.safe_load(listed)) == FIGURES
    for name in FIGURES:
        assert (ROOT / "workflow" / "report" / f"{name}.rst").read_text().strip(), name


def test_the_command_line_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "pipeline.analysis.report", "--help"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--workflow-config" in result.stdout and "--logs" in result.stdout
