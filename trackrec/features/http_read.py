"""Online features over HTTP, as a ranker reads them: one POST to the feature server's
`/get-online-features` (`feast serve`, behind the read-only front on a cluster).

The same rows `reading.read` gives from a repo, from the server a ranker reaches: per user its
newest snapshot (embedding, RecCoT, as_of, iteration) and `feature_version`, the version that wrote
the row (Feast's column is `model_version`); None where the user has none, or where the snapshot is
older than `ttl_days` (Feast's online read does not apply the TTL).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import numpy as np
import pandas as pd

from trackrec.config import TTL_DAYS
from trackrec.features.store import StoreError
from trackrec.inert import inert

DAY = 86_400
MAX_ANSWER = 64 << 20  # bytes read of an answer: a few thousand users' vectors, never a stream without end
ERROR_CHARS = 200  # of the server's error text in a message
COLUMNS = ("user_id", "feature_version", "as_of", "iteration", "reccot", "embedding")


def request_body(service: str, user_ids: list[int]) -> dict:
    """The POST body: the FeatureService (`reccot_<version>` or an arm's `ctr_<arm>`) and the users."""
    return {"feature_service": service, "entities": {"user_id": [int(u) for u in user_ids]}}


def read_over_http(
    url: str, service: str, user_ids: list[int], ttl_days: int | None = None, timeout: float = 2.0
) -> pd.DataFrame:
    """COLUMNS for `user_ids` from the server at `url`, in their order."""
    if ttl_days is not None and (problem := TTL_DAYS.outside(ttl_days)):
        raise StoreError(f"ttl_days: must be {problem}, got {ttl_days!r}")
    answer = _post(f"{url.rstrip('/')}/get-online-features", request_body(service, user_ids), timeout)
    try:
        return _rows(answer, [int(u) for u in user_ids], ttl_days)
    except (KeyError, TypeError, ValueError) as error:
        raise StoreError(f"{url}: not a Feast online-features answer ({inert(error, ERROR_CHARS)})") from error


def _rows(answer: dict, user_ids: list[int], ttl_days: int | None) -> pd.DataFrame:
    columns = dict(zip(answer["metadata"]["feature_names"], answer["results"], strict=True))
    values = {name: column["values"] for name, column in columns.items()}
    for name in ("embedding", "reccot", "as_of", "iteration", "model_version"):
        if len(values[name]) != len(user_ids):
            raise ValueError(f"{len(values[name])} values of {name} for {len(user_ids)} users")
    as_of = pd.array(values["as_of"], dtype="Int64")
    age = time.time() - as_of.to_numpy(np.float64, na_value=np.nan)
    present = np.array([status == "PRESENT" for status in columns["embedding"]["statuses"]])
    served = present & ~(age > ttl_days * DAY if ttl_days else False)  # NaN (no as_of): not stale
    return pd.DataFrame(
        {
            "user_id": user_ids,
            "feature_version": values["model_version"],
            "as_of": as_of,
            "iteration": values["iteration"],
            "reccot": [r if keep else None for r, keep in zip(values["reccot"], served, strict=True)],
            "embedding": [
                np.asarray(v, np.float32) if keep else None for v, keep in zip(values["embedding"], served, strict=True)
            ],
        }
    )


def _post(url: str, body: dict, timeout: float) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as error:
        said = error.read(ERROR_CHARS).decode(errors="replace")
        raise StoreError(f"{url}: HTTP {error.code} {inert(said, ERROR_CHARS)}") from error
    except OSError as error:
        raise StoreError(f"{url}: feature server unreachable ({inert(error, ERROR_CHARS)})") from error
    if len(data) > MAX_ANSWER:
        raise StoreError(f"{url}: an answer over {MAX_ANSWER} bytes: ask for fewer users")
    try:
        return json.loads(data)
    except ValueError as error:
        raise StoreError(f"{url}: the answer is not JSON ({inert(error, ERROR_CHARS)})") from error
