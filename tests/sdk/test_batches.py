"""``samo.Client`` batches: uploads streamed from a list, a file and a one-shot iterator, results iterated."""
from __future__ import annotations

import csv

import pytest

import samo
from config.valence import LABELS

TEXTS = ["I love this!", "This is so sad.", "What a surprise.", "I am furious about it.", "Thanks a lot."]


def test_upload_a_list_wait_and_iterate_its_results(sdk):
    items = [TEXTS[0], {"text": TEXTS[1], "id": "r2", "subject": "ana"}, *TEXTS[2:]]
    batch = sdk.batches.upload(items)
    assert isinstance(batch, samo.Batch) and batch.total_items == len(items) and batch.format == "jsonl"
    done = sdk.batches.wait(batch, timeout=180)
    assert done.status == "completed" and done.counts.succeeded == len(items)
    lines = list(sdk.batches.iter_results(batch))
    assert [line.row for line in lines] == [1, 2, 3, 4, 5]
    assert lines[1].id == "r2" and lines[1].subject == "ana"
    assert all(line.status == "succeeded" and line.result.top_emotion in LABELS for line in lines)
    assert [job.row for job in sdk.batches.jobs(batch, page_size=2)] == [1, 2, 3, 4, 5]
    assert sdk.batches.get(batch.id) == done
    assert batch.id in [found.id for found in sdk.batches.list()]


def test_upload_a_csv_file_with_a_progress_bar(sdk, tmp_path, capsys):
    path = tmp_path / "entries.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "text"])
        writer.writerows([f"c{n}", text] for n, text in enumerate(TEXTS * 4))
    batch = sdk.batches.upload(path, progress=True)
    assert batch.format == "csv" and batch.total_items == 20
    assert "upload" in capsys.readouterr().err
    done = sdk.batches.wait(batch.id, timeout=180)
    assert done.counts.succeeded == 20
    assert [line.id for line in sdk.batches.iter_results(batch)] == [f"c{n}" for n in range(20)]


def test_upload_a_generated_iterable_of_unknown_length(sdk):
    batch = sdk.batches.upload(text for text in TEXTS * 60)
    assert batch.total_items == 300 and batch.invalid_items == 0


def test_rows_the_api_refuses_are_reported_and_the_rest_run(sdk):
    batch = sdk.batches.upload(["Fine.", {"no_text": 1}, "Also fine."])
    assert batch.total_items == 2 and batch.invalid_items == 1
    assert batch.errors[0].row == 2


def test_cancel_a_running_batch(idle_api, make_tenant):
    tenant = make_tenant()
    with samo.Client(idle_api, tenant.api_key) as sdk:
        batch = sdk.batches.upload(TEXTS)
        canceled = sdk.batches.cancel(batch)
        assert canceled.status == "canceled"
        with pytest.raises(samo.ConflictError):
            sdk.batches.cancel(batch)


def test_items_that_are_neither_texts_nor_dicts_are_refused_before_sending(sdk):
    with pytest.raises(TypeError):
        sdk.batches.upload([1, 2])
    with pytest.raises(ValueError, match="format"):
        sdk.batches.upload("entries.txt")
