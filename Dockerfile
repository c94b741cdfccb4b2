# luffy-serve on NVIDIA GPUs: an OpenAI-compatible endpoint for LUFFY models.
#
#   docker build -t luffy .
#   docker run -d --gpus all --ipc host --restart unless-stopped -p 8000:8000 \
#       -v ~/.cache/huggingface:/home/luffy/.cache/huggingface luffy --model luffy-qwen-math-1.5b-zero
#
# On a GPU machine, python scripts/image_check.py --dockerfile Dockerfile --gpus all --model DIR builds it and
# checks it as tests/image/ checks the CPU image (health, chat, grade, HEALTHCHECK, uid, writes, SIGTERM).
#
# Built on the official vLLM OpenAI image, whose vLLM is locks/serve-gpu.txt's (tests/app/test_dockerfiles.py).
ARG VLLM_VERSION=v0.32.0
FROM vllm/vllm-openai:${VLLM_VERSION}

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GRADIO_ANALYTICS_ENABLED=False \
    HF_HOME=/home/luffy/.cache/huggingface \
    LUFFY_HEALTH_URL=http://127.0.0.1:8000/health
# (LUFFY_HEALTH_URL is what HEALTHCHECK probes: with --port N, pass -e LUFFY_HEALTH_URL=http://127.0.0.1:N/health)

# A non-root user; uid 1000 matches the usual owner of a host's ~/.cache/huggingface.
RUN (userdel --remove ubuntu 2>/dev/null || true) \
    && useradd --create-home --home-dir /home/luffy --uid 1000 --shell /bin/bash luffy \
    && mkdir -p /home/luffy/.cache/huggingface \
    && chown -R luffy:luffy /home/luffy/.cache

WORKDIR /opt/luffy
COPY pyproject.toml README.md ./
COPY luffy_serve/ luffy_serve/
COPY luffy_math/ luffy_math/
COPY luffy_util/ luffy_util/
COPY luffy_testing/ luffy_testing/
COPY benchmarks/ benchmarks/
COPY luffy_train/ luffy_train/
COPY app/ app/
COPY locks/ locks/
# The exact versions of locks/serve-gpu.txt (resolved for this image's Python 3.12); vLLM and its CUDA torch
# are the base image's, at the lock's versions, so pip keeps them.
RUN python3 -m pip install --no-cache-dir --no-deps -r /opt/luffy/locks/serve-gpu.txt \
    && python3 -m pip install --no-cache-dir --no-deps /opt/luffy
# "luffy_exact" grading: luffy_math under LUFFY's pinned grading libraries (locks/exact.txt), in an
# environment of its own (a venv without pip of its own: the image's pip installs into it).
ENV LUFFY_EXACT_PYTHON=/opt/luffy-exact/bin/python
RUN python3 -m venv --without-pip /opt/luffy-exact \
    && python3 -m pip --python /opt/luffy-exact/bin/python install --no-cache-dir --no-deps \
        -r /opt/luffy/locks/exact.txt \
    && python3 -m pip --python /opt/luffy-exact/bin/python install --no-cache-dir --no-deps /opt/luffy \
    && install -d -o luffy -g luffy /home/luffy/.cache/tmp
# Scratch files (vLLM's engine sockets among them) go to the cache volume too: the image's own layers stay as
# built, so a read-only root file system works.
ENV TMPDIR=/home/luffy/.cache/tmp

# The luffy user, by number so that runAsNonRoot checks can see it.
USER 1000:1000
WORKDIR /home/luffy
VOLUME ["/home/luffy/.cache"]
EXPOSE 8000

# Model loading takes minutes; /health answers 200 once the engine is ready.
HEALTHCHECK --interval=30s --timeout=10s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['LUFFY_HEALTH_URL'], timeout=8)"]

ENTRYPOINT ["luffy-serve"]
