"""The typed records the stages hand each other (pilotopt.records): a file's dict comes back as it was
written, an undeclared or mistyped field is one line naming the record and the field, and the writers
(evaluate, the drive jobs) refuse to write what the records do not declare."""

from __future__ import annotations

import pytest
from test_report import drive, offline_doc, offline_row

from pilotopt.errors import BadInputError
from pilotopt.records import Drive, OfflineRow, VariantSummary, drives_of, offline_rows


def test_offline_rows_and_drives_round_trip_as_written():
    rows = [offline_row("keras", runtime="keras", baseline=None, mb=19.2, mse=0.007, p50=1.0),
            offline_row("broken", status="failed", reason="no GPU")]
    for row in rows:
        assert OfflineRow.from_json(row).to_json() == row  # nothing added, nothing renamed
    typed = offline_rows(offline_doc(rows))
    assert typed[0].p50_ms == 1.0 and typed[0].mse_mean == 0.007 and typed[0].key == "tf/keras"
    assert typed[1].p50_ms is None and typed[1].error is None
    d = drive("keras", "simple", completed=False)
    assert Drive.from_json(d).to_json() == d
    (rec,) = drives_of([d])
    assert not rec.clean_lap and rec.score == d["metrics"]["driving_score"] and rec.cell == ("default", "simple",
                                                                                             "anticlockwise")
    failed = drives_of([drive("keras", "simple", status="failed", reason="crash")])[0]
    assert failed.score == 0.0 and not failed.clean_lap  # a failed drive scores 0


@pytest.mark.parametrize("change, says", [
    (lambda r: r.update(mse_of_v=0.1), "field 'mse_of_v': Extra inputs are not permitted"),
    (lambda r: r["error"].update(mse_mean="low"), "field 'error.mse_mean'"),
    (lambda r: r["latency_ms"]["model"].pop("p50_ms"), "field 'latency_ms.model.p50_ms': Field required"),
])
def test_a_field_nobody_declared_is_one_line_naming_it(change, says):
    row = offline_row("keras", runtime="keras", baseline=None, mb=19.2, mse=0.007, p50=1.0)
    change(row)
    with pytest.raises(BadInputError) as e:
        offline_rows([row])
    assert says in str(e.value) and "offline row 'keras'" in str(e.value) and "\n" not in str(e.value)


def test_writers_refuse_an_undeclared_field(tmp_path):
    from pilotopt.evaluate.results import write_results

    row = dict(offline_row("keras", runtime="keras", baseline=None, mb=19.2, mse=0.007, p50=1.0), gpu_temp=61)
    with pytest.raises(BadInputError, match="evaluate's row 'keras': field 'gpu_temp'"):
        write_results(tmp_path, offline_doc([row]))
    assert not (tmp_path / "results.json").exists()  # nothing half-written


def test_summaries_are_frozen_and_complete():
    s = VariantSummary(key="tf/x", name="x")
    with pytest.raises(Exception):
        s.name = "y"  # frozen: a stage cannot edit what another decided
    assert set(s.to_json()) == set(VariantSummary.model_fields)  # every field, so a reader needs no defaults
    assert VariantSummary.from_json(s.to_json()) == s
