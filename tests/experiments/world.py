"""Generated data for the experiment tests: a behaviour log with conversions at known rates, exposure
logs with known per-arm rates, and a small Feast store with two versions and their models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.synthetic import GENRES, item_genre

START = pd.Timestamp("2025-01-01", tz="UTC")
VALID_START, TEST_START = "2025-03-01", "2025-04-01"
PREMIUM_CVR, OTHER_CVR = 0.6, 0.1  # P(conversion | click): items with id % 3 == 0, the others


def behaviour_log(n_users: int = 60, n_items: int = 30, per_user: int = 60, seed: int = 0) -> pd.DataFrame:
    """Each user clicks their genre's items (p 0.8, else 0.15), spread over Jan-Apr 2025; a click
    converts with PREMIUM_CVR on premium items, OTHER_CVR otherwise; no conversion without a click."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, n_users + 1):
        favourite = GENRES[user % len(GENRES)]
        for step in range(per_user):
            item = int(rng.integers(1, n_items + 1))
            click = int(rng.random() < (0.8 if item_genre(item) == favourite else 0.15))
            converts = click and rng.random() < (PREMIUM_CVR if item % 3 == 0 else OTHER_CVR)
            when = START + pd.Timedelta(days=110 * step / per_user, minutes=user)
            rows.append((f"u{user}", f"i{item}", when, click, int(converts), f"Movie {item}", [item_genre(item)]))
    columns = ["user_id", "item_id", "timestamp", "label", "conversion", "title", "genres"]
    return pd.DataFrame(rows, columns=columns)


def write_log(folder: Path, log: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    log.to_parquet(folder / "log.parquet")
    return folder / "log.parquet"


def exposures(
    rates: dict[str, tuple[float, float]], shares: dict[str, float], users: int = 4000, seed: int = 0, per_user: int = 5
) -> pd.DataFrame:
    """An exposure log: `users` users dealt to arms by `shares` exactly (not by a hash: a test sets the
    split), `per_user` impressions each; arm -> (CTR, post-click CVR) as given; a pre-period click
    count correlated with each user's own propensity (what CUPED uses)."""
    rng = np.random.default_rng(seed)
    names = list(shares)
    counts = np.round(np.array([shares[n] for n in names]) * users).astype(int)
    arm_of_user = np.repeat(names, counts)
    taste = rng.beta(2, 8, size=len(arm_of_user))  # each user's own click propensity, mean 0.2
    rows = []
    for user, (arm, own) in enumerate(zip(arm_of_user, taste, strict=True), start=1):
        ctr, cvr = rates[arm]
        p = np.clip(own * ctr / 0.2, 0, 1)
        clicks = rng.random(per_user) < p
        converts = clicks & (rng.random(per_user) < cvr)
        pre = int(rng.binomial(20, np.clip(own, 0, 1)))
        for k in range(per_user):
            rows.append((f"{user}-{k}", user, k + 1, arm, f"v_{arm}", f"m_{arm}", 1_700_000_000 + k, clicks[k]))
            rows[-1] += (converts[k], float(np.clip(p + rng.normal(0, 0.05), 0, 1)), 0, pre, 20)
    columns = ["impression_id", "user_id", "item_id", "arm", "feature_version", "model_version", "timestamp"]
    columns += ["click", "conversion", "p_click", "feature_miss", "pre_clicks", "pre_impressions"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.astype({"click": "int8", "conversion": "int8", "feature_miss": "int8"})


DIM = 8


def arm_vectors(dataset_dir: Path, informative: bool, as_of: int, seed: int, skip_every: int = 10) -> pd.DataFrame:
    """One snapshot per user as of `as_of`, every `skip_every`-th user left without one (a feature miss):
    the user's genre one-hot plus noise (informative) or noise alone."""
    from trackrec.data.dataset import Dataset

    rng = np.random.default_rng(seed)
    users = Dataset.open(dataset_dir).id_maps["user"]
    users = users[users.id % skip_every != 0]
    raw = users.raw_id.str.lstrip("u").astype(int).to_numpy()
    vectors = rng.normal(0, 0.3, size=(len(users), DIM)).astype(np.float32)
    if informative:
        vectors[np.arange(len(users)), raw % len(GENRES)] += 1.0
    return pd.DataFrame(
        {
            "user_id": users.id.to_numpy(np.int64),
            "as_of": as_of,
            "reccot": [f"user {u}" for u in raw],
            "iteration": 1,
            "embedding": list(vectors),
        }
    )


def experiment_world(root: Path, n_users: int = 40, per_user: int = 100, epochs: int = 10):
    """A prepared log with conversions, two feature versions in a SQLite Feast store (noise for the
    control, the users' genre for the treatment), an ESMM model trained on each, a running 50/50
    experiment over them: (store config, experiment, dataset folder)."""
    from trackrec.ctr.config import CTRConfig, TrainConfig
    from trackrec.data.config import DataConfig
    from trackrec.experiments import registry
    from trackrec.experiments.assignment import ArmSpec, Experiment
    from trackrec.features import versions
    from trackrec.features.store import StoreConfig, open_store
    from trackrec.stages.prepare_data import prepare_data
    from trackrec.stages.train_ctr import train_ctr

    log = write_log(root / "log", behaviour_log(n_users=n_users, per_user=per_user))
    data = DataConfig(source="behaviour-log", path=str(log), valid_start=VALID_START, test_start=TEST_START)
    prepare_data(data, root / "dataset")
    store = StoreConfig(repo=str(root / "feast"), dim=DIM)
    train = TrainConfig(max_epochs=epochs, batch_size=64, lr=0.003, patience=3)
    arms = []
    for name, version, informative in (("control", "v_noise", False), ("candidate", "v_genre", True)):
        table = arm_vectors(root / "dataset", informative, int(START.timestamp()) - 1, seed=len(arms))
        table.to_parquet(root / f"{version}.parquet")
        versions.publish(table, version, open_store(store), progress=False)
        vectors = str(root / f"{version}.parquet")
        config = CTRConfig(
            backbone="deepfm", history_len=5, task="esmm", user_vectors=vectors, dense_dim=DIM, train=train
        )
        train_ctr(root / "dataset", config, root / f"model_{version}", progress=False)
        arms.append(ArmSpec(name, version, str(root / f"model_{version}"), 0.5))
    experiment = Experiment("genre_vectors", "salt-1", tuple(arms), "2025-04-01T00:00:00+00:00")
    registry.start(open_store(store), experiment)
    return store, experiment, root / "dataset"
