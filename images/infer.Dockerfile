# Inference image: sample, score, greedy, evaluate, summarize (GPU). vLLM's own image + trackrec.
FROM vllm/vllm-openai:v0.32.0

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 HOME=/home/trackrec TRACKREC_CACHE=/cache

RUN useradd --uid 10001 --create-home --home-dir /home/trackrec trackrec \
    && mkdir -p /cache && chown 10001 /cache

WORKDIR /app
COPY pyproject.toml README.md ./
COPY constraints/ constraints/
COPY trackrec/ trackrec/
COPY components/ components/
COPY pipelines/ pipelines/
COPY configs/ configs/
# vLLM's image brings torch and vllm; the pins keep pip from replacing them
RUN pip install -c constraints/gpu.txt ".[infer]"

USER 10001
ENTRYPOINT []
