# Inference image: sample, score, greedy, evaluate, summarize (GPU). CUDA runtime + vLLM + trackrec.
# vLLM from PyPI, pinned (constraints/gpu.txt), over the training image's base: a base pinned by
# digest, where vLLM's own image is a mutable tag.
# tag for humans, digest for pulls
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04@sha256:ac55d124da4882b497f732d8dfd9a702d5447a5f29d08d56da6f64f0a1eb34bc

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH HOME=/home/trackrec TRACKREC_CACHE=/cache

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 python3.12-venv python3.12-dev build-essential \
    && rm -rf /var/lib/apt/lists/* \
    && python3.12 -m venv /opt/venv \
    && useradd --uid 10001 --create-home --home-dir /home/trackrec trackrec \
    && mkdir -p /cache && chown 10001 /cache

WORKDIR /app
COPY pyproject.toml README.md ./
COPY constraints/ constraints/
COPY trackrec/ trackrec/
COPY components/ components/
COPY pipelines/ pipelines/
COPY configs/ configs/
# vllm and the torch build its wheel was made for, from PyPI, both pinned
RUN pip install -c constraints/gpu.txt ".[infer]"

USER 10001
ENTRYPOINT []
