# Training image: align, rectune, distill (GPU). CUDA runtime + torch + trl + peft + deepspeed + trackrec.
# tag for humans, digest for pulls
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04@sha256:ac55d124da4882b497f732d8dfd9a702d5447a5f29d08d56da6f64f0a1eb34bc

ARG TORCH_VERSION=2.13.0
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
# torch's CUDA build first, then the package and its training extra from the repo, pinned
RUN pip install "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cu128
COPY pyproject.toml README.md ./
COPY constraints/ constraints/
COPY trackrec/ trackrec/
COPY components/ components/
COPY pipelines/ pipelines/
COPY configs/ configs/
RUN pip install -c constraints/gpu.txt ".[train]"

USER 10001
ENTRYPOINT []
