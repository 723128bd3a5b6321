# syntax=docker/dockerfile:1
# The tools image: the whole workspace (registry export stack with PyTorch's CUDA 12 build,
# loadtest, chaos, dashboards) for the bootstrap Job, the load runner and the chaos helper.
# Serving uses the lean modelserve/predictor image (Dockerfile). Sizes: README.
#   docker build -f deploy/docker/tools.Dockerfile -t modelserve/tools:latest .

FROM python:3.11-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Third-party dependencies first, from the lock alone: this layer survives code changes.
COPY pyproject.toml uv.lock ./
COPY packages/model-registry/pyproject.toml packages/model-registry/
COPY packages/predictor/pyproject.toml packages/predictor/
COPY packages/loadtest/pyproject.toml packages/loadtest/
COPY packages/chaos/pyproject.toml packages/chaos/
COPY dashboards/pyproject.toml dashboards/
COPY packages/runtime/pyproject.toml packages/runtime/
COPY packages/metric-names/pyproject.toml packages/metric-names/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-workspace
# Then the workspace itself, installed as wheels (not editable): /app/.venv stands alone.
COPY packages packages
COPY dashboards dashboards
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

FROM python:3.11-slim-bookworm
RUN groupadd --gid 10001 modelserve \
 && useradd --uid 10001 --gid 10001 --home-dir /home/modelserve --create-home \
            --shell /usr/sbin/nologin modelserve
COPY --from=build /app/.venv /app/.venv
COPY packages/chaos/experiments /experiments
# Every path the processes write is under HOME, TMPDIR, BENTOML_HOME or REGISTRY_CACHE_DIR,
# so the pod can mount emptyDirs there and keep the root filesystem read-only.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/modelserve \
    BENTOML_HOME=/var/lib/modelserve/bentoml \
    REGISTRY_CACHE_DIR=/var/lib/modelserve/cache \
    HF_HOME=/home/modelserve/.cache/huggingface \
    HF_HUB_OFFLINE=1 \
    PREDICTOR_HOST=0.0.0.0 \
    PREDICTOR_PORT=3000
RUN mkdir -p /var/lib/modelserve/bentoml /var/lib/modelserve/cache \
 && chown -R 10001:10001 /var/lib/modelserve
USER 10001:10001
WORKDIR /home/modelserve
ENTRYPOINT ["predictor", "serve"]
