"""How jobs become broker messages (tasks.enqueue) and how a batching worker sizes batches of them."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

from config.celery import make_celery
from config.job_types import emotion_model_of, emotion_model_queues, model_queue_of
from config.settings import Settings
from tasks.enqueue import MAX_JOBS_PER_MESSAGE, OutgoingJob, broker_messages, text_chars
from workers.batching import CHARS_PER_JOB, DynamicBatches, JobBatches


def test_emotion_jobs_share_messages_and_other_jobs_get_one_each():
    emotion = [uuid.uuid4() for _ in range(MAX_JOBS_PER_MESSAGE + 3)]
    summaries = [uuid.uuid4() for _ in range(2)]
    jobs = [(job_id, "emotion") for job_id in emotion[:5]] + [(summaries[0], "summarize")]
    jobs += [(job_id, "emotion") for job_id in emotion[5:]] + [(summaries[1], "summarize")]

    messages = broker_messages(jobs)

    assert [(task, args) for task, args, *_ in messages if task != "tasks.emotion.analyze_job"] == [
        ("tasks.summarize.summarize_job", [str(summaries[0])]),
        ("tasks.summarize.summarize_job", [str(summaries[1])]),
    ]
    shared = [args for task, args, *_ in messages if task == "tasks.emotion.analyze_job"]
    assert [len(args) for args in shared] == [MAX_JOBS_PER_MESSAGE, 3]
    assert sum(shared, []) == [str(job_id) for job_id in emotion]


class WeighedBatches(DynamicBatches):
    abstract = True
    flush_every = 8

    @staticmethod
    def jobs_in(request) -> int:
        return len(request.args)


def message(jobs: int) -> SimpleNamespace:
    return SimpleNamespace(args=[str(uuid.uuid4()) for _ in range(jobs)])


def test_a_batch_takes_messages_up_to_its_size_in_jobs():
    batches = WeighedBatches()
    assert batches._take_batch([message(3), message(3), message(3), message(1)]) == 3
    assert batches._take_batch([message(2), message(6), message(1)]) == 2
    assert batches._take_batch([message(20), message(1)]) == 1, "a message larger than a batch still goes alone"
    assert batches._take_batch([message(1), message(2)]) == 2


def test_messages_count_one_each_unless_the_task_says_otherwise():
    plain = DynamicBatches()
    plain.flush_every = 2
    assert plain._take_batch([message(5), message(5), message(5)]) == 2


def test_batched_messages_carry_the_characters_of_their_texts():
    ids = [uuid.uuid4() for _ in range(3)]
    messages = broker_messages([(ids[0], "emotion", 10), (ids[1], "emotion", 5000), (ids[2], "summarize", 99)])
    assert [(m.task, m.chars) for m in messages] == [("tasks.summarize.summarize_job", None),
                                                     ("tasks.emotion.analyze_job", 5010)]
    assert broker_messages([(ids[0], "emotion")])[0].chars == 0
    assert text_chars({"text": "four"}) == 4 and text_chars({"audio": {}}) == 0


def test_jobs_for_another_emotion_model_go_to_its_queue_and_the_default_keeps_the_route():
    for gpu, queue in ((False, "cpu"), (True, "gpu")):
        settings = Settings(emotion_models={"large": "org/big"}, gpu_workers_enabled=gpu)
        celery = make_celery(settings)
        ids = [str(uuid.uuid4()) for _ in range(5)]
        messages = broker_messages([OutgoingJob(ids[0], "emotion", 4), OutgoingJob(ids[1], "emotion", 5, model="large"),
                                    OutgoingJob(ids[2], "transcribe", model="large"),
                                    OutgoingJob(ids[3], "summarize", model="large"), OutgoingJob(ids[4], "emotion")],
                                   celery)
        assert {(m.task, tuple(m.args), m.queue) for m in messages} == {
            ("tasks.emotion.analyze_job", (ids[0], ids[4]), None),
            ("tasks.emotion.analyze_job", (ids[1],), f"{queue}.large"),
            ("tasks.speech.transcribe_job", (ids[2],), f"{queue}.large"),
            ("tasks.summarize.summarize_job", (ids[3],), None),
        }
        assert emotion_model_queues(settings) == [queue, f"{queue}.large"]
    assert model_queue_of("cpu") == "cpu" and emotion_model_of(model_queue_of("cpu", "large")) == "large"
    assert emotion_model_of("gpu") == "default"


def sized(jobs: int, chars: int) -> SimpleNamespace:
    return SimpleNamespace(args=[str(uuid.uuid4()) for _ in range(jobs)], kwargs={"chars": chars})


def test_a_batch_counts_the_text_it_holds_not_only_its_jobs():
    batches = JobBatches()
    batches.flush_every = 8
    assert JobBatches.jobs_in(sized(2, 40)) == 2
    assert JobBatches.jobs_in(sized(1, 5 * CHARS_PER_JOB + 1)) == 6
    assert JobBatches.jobs_in(SimpleNamespace(args=["a"], kwargs={})) == 1
    assert batches._take_batch([sized(1, 100), sized(1, 6 * CHARS_PER_JOB), sized(1, 100), sized(1, 100)]) == 3
    assert batches._take_batch([sized(1, 200 * CHARS_PER_JOB), sized(1, 100)]) == 1, "a long document goes alone"
