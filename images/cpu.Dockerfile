# CPU image: prepare_data, select_samples, encode, publish, train_ctr, the Feast feature server,
# and the Helm job that registers the pipeline. torch's CPU build, feast, the encoder, the CTR models.
# tag for humans, digest for pulls
FROM python:3.11.13-slim-bookworm@sha256:86adf8dbadc3d6e82ee5dd2c74bec2e1c2467cdad47886280501df722372d2e1

# MALLOC_ARENA_MAX: glibc's per-thread malloc arenas fragment over a long CTR training (torch's
# threads): peak memory grew with the samples (1.3 GB at 10M, bench/scale.py); two arenas keep it flat
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HOME=/home/trackrec TRACKREC_CACHE=/cache MALLOC_ARENA_MAX=2

RUN useradd --uid 10001 --create-home --home-dir /home/trackrec trackrec \
    && mkdir -p /cache && chown 10001 /cache

WORKDIR /app
COPY pyproject.toml README.md ./
COPY constraints/ constraints/
COPY trackrec/ trackrec/
COPY components/ components/
COPY pipelines/ pipelines/
COPY configs/ configs/
# the CPU build of torch first (as make setup does), then the package, pinned
RUN pip install -c constraints/cpu.txt torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install -c constraints/cpu.txt .

USER 10001
ENTRYPOINT []
