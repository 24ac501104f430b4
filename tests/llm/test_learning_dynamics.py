"""Learning dynamics on a task whose right RecCoT is knowable (each user likes one genre).

G0 is distilled from a teacher that states the genre on a few users only, so it is often wrong;
V0 is Rec-tuned on G0's greedy RecCoTs. After one S-DPO round on V0's rewards, G's greedy RecCoTs
must earn a higher reward under that same V0, and the Rec-tuned V must rank held-out users' test
items well. With the sign of the S-DPO loss flipped this test fails (checked by hand).
"""

import pytest

from tests.llm.genre_task import genre_teacher, write_genre_data, write_genre_model
from tests.llm.teacher_server import TeacherServer
from trackrec.config import config_from_dict
from trackrec.run import RunConfig, run
from trackrec.stages.evaluate import evaluate
from trackrec.stages.greedy import greedy


@pytest.fixture(scope="module")
def genre_loop(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("genre")
    model = write_genre_model(tmp / "model")
    root = write_genre_data(tmp / "data", n_users=48)
    train = {"epochs": 4, "learning_rate": 0.005, "batch_size": 8}
    with TeacherServer(genre_teacher) as server:
        raw = {
            "run_dir": str(tmp / "run"),
            "data": {"root": str(root)},
            "llm": {
                "base": str(model),
                "iterations": 1,
                "lora": {"r": 16, "alpha": 32},
                "subset": {"train_samples": 24, "eval_samples": 24, "distill_fraction": 0.25, "seed": 0},
                "generation": {"history_tokens": 160, "max_new_tokens": 3, "samples": 4, "batch_size": 24},
                "teacher": {"endpoint": server.url, "model": "genre", "cache_dir": str(tmp / "cache")},
                "distill_train": train,
                "align_train": {"epochs": 4, "learning_rate": 0.005, "batch_size": 8},
                "rectune_train": train | {"epochs": 8},
                "beta": 0.5,
            },
            "ctr": {"train": {"max_epochs": 1}},
        }
        config = config_from_dict(RunConfig, raw)
        rows = run(config, log=lambda _: None)["llm"]
    return config, tmp / "run" / "llm", rows


def test_alignment_raises_the_reward_of_greedy_reccots_under_the_same_validator(genre_loop, tmp_path):
    config, llm_dir, _ = genre_loop
    samples, v0 = llm_dir / "samples", llm_dir / "iter0" / "rectune" / "adapter"
    before = llm_dir / "iter0" / "greedy"
    after = greedy(samples, llm_dir / "iter1" / "align" / "adapter", config.llm, tmp_path / "g1", progress=False)
    assert after > 0
    reward_before = evaluate(samples, before, v0, config.llm, tmp_path / "e0", progress=False)["mean_reward"]
    reward_after = evaluate(samples, tmp_path / "g1", v0, config.llm, tmp_path / "e1", progress=False)["mean_reward"]
    assert reward_after > reward_before + 0.02, (reward_before, reward_after)


def test_validator_ranks_held_out_users_items(genre_loop):
    _, _, rows = genre_loop
    assert rows[-1]["auc"] > 0.7, rows
