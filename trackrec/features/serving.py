"""The consumer side: score one request with a trained CTR model and the user's features read online.

What a production ranker does per request: read the user's RecCoT vector from the online store
through its arm's feature service, build the same batch the model was trained on, predict. A user
without features reads zeros, as in training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from trackrec.ctr.esmm import predict_tasks
from trackrec.ctr.features import rows_to_batch
from trackrec.ctr.saved import load_trained
from trackrec.data.dataset import Dataset
from trackrec.features import definitions
from trackrec.features.http_read import read_over_http
from trackrec.features.reading import open_repo, read


class RequestScorer:
    """url: read the features over HTTP from that feature server, as a ranker does; else from `repo`."""

    def __init__(
        self,
        ctr_dir: str | Path,
        dataset_dir: str | Path,
        repo: str | Path,
        arm: str = "control",
        url: str | None = None,
        ttl_days: int | None = None,
    ):
        dataset = Dataset.open(dataset_dir)
        self.model, trained = load_trained(ctr_dir, dataset)
        self.history_len, self.dim, self.arm = trained["history_len"], trained["dense_dim"], arm
        self.n_users, self.n_items = dataset.n_users, dataset.n_items
        self.url, self.ttl_days = url, ttl_days
        self.store = open_repo(repo) if self.dim and url is None else None

    def user_vector(self, user_id: int) -> tuple[np.ndarray, str | None]:
        """The user's online vector and its feature version; zeros and None when the user has none."""
        if self.url is None:
            row = read(self.store, [user_id], arm=self.arm).iloc[0]
            version = row.model_version  # Feast's column name for the version that wrote the row
        else:
            service = definitions.arm_service_name(self.arm)
            row = read_over_http(self.url, service, [user_id], self.ttl_days).iloc[0]
            version = row.feature_version
        if row.embedding is None:
            return np.zeros(self.dim, dtype=np.float32), None
        return row.embedding, version

    def score(self, user_id: int, item_id: int, history_item_ids: list[int], history_labels: list[int]) -> dict:
        known = 0 < user_id < self.n_users  # ids the model never saw read the padding row, 0
        request = pd.DataFrame(
            {
                "user_id": [user_id if known else 0],
                "target_item_id": [item_id if 0 < item_id < self.n_items else 0],
                "history_item_ids": [list(history_item_ids)],
                "history_labels": [list(history_labels)],
                "label": [0],  # unknown at serving time; not read by the model
            }
        )
        batch = rows_to_batch(request, self.history_len)
        version = None
        if self.dim:
            vector, version = self.user_vector(user_id)
            batch["dense"] = torch.from_numpy(vector[None, :])
        scored = predict_tasks(self.model, [batch]).iloc[0]
        answer = {"user_id": user_id, "item_id": item_id, "p_click": float(scored.p_click)}
        if not np.isnan(scored.p_conversion):  # a joint CTR x CVR model (ctr.task: esmm)
            answer["p_conversion"] = float(scored.p_conversion)
        return answer | {"feature_version": version}
