"""`makerlab report RUN_DIR` rebuilds a saved run's simulation report."""

from pypdf import PdfReader

from makerlab.analytics.report import CODE_FILE
from makerlab.cli import main


def test_report_rebuilds_pdf_and_html_from_a_saved_run(record, tmp_path, capsys):
    run = record.save(tmp_path / "run")
    (run / CODE_FILE).write_text("# the strategy\nprint('quote')\n")
    assert main(["report", str(run)]) == 0
    assert "report.pdf" in capsys.readouterr().out
    text = "".join(page.extract_text() for page in PdfReader(run / "report" / "report.pdf").pages)
    for section in ("configs", "stats", "perf[inventory]", "markouts", "Script"):
        assert section in text
    assert "print('quote')" in text and "the strategy" not in text  # comments stripped
    html = (run / "report" / "report.html").read_text()
    assert "Plotly.newPlot" in html and "<script src=\"http" not in html


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a saved run" in capsys.readouterr().err
