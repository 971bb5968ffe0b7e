"""Result tables and figures."""


import pytest

from lowshot.reports.tables import load_rows, to_csv, to_latex, to_markdown


@pytest.fixture
def run(gzsl_result_dir):
    return gzsl_result_dir


def test_tables_show_mean_std_and_published_row(run):
    rows = load_rows([run])
    md = to_markdown(rows)
    assert "| clipclap.ucf (2 seeds) | 70.00 ± 0.50 | 40.00 ± 0.50 | 50.90 ± 0.50 | 45.00 ± 0.50 |" in md
    assert "published (Kurzendörfer et al., Table 5.1) | 77.14 |" in md
    assert to_csv(rows).splitlines()[1].startswith("clipclap.ucf (2 seeds),70.0,0.5,40.0")
    assert r"70.00 $\pm$ 0.50" in to_latex(rows)
    assert len(load_rows([run], with_reference=False)) == 1


def test_learning_curve_figure(tmp_path):
    pytest.importorskip("matplotlib")
    from lowshot.reports.figures import plot_learning_curves

    history = [{"stage": 1, "epoch": e, "loss": 3 - e, "val_S": 10 * e, "val_U": 5 * e, "val_HM": 6 * e} for e in range(3)]
    history += [{"stage": 2, "epoch": e, "loss": 3 - e} for e in range(3)]
    out = plot_learning_curves(history, tmp_path / "c.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
