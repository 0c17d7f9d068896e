# One image for the API, every Celery worker, beat and Flower; the compose service picks the command.
#
#   docker build -t samo-brain .                                  # CPU torch (small, default)
#   docker build -t samo-brain:gpu --build-arg TORCH_VARIANT=cu128 .   # CUDA torch for `gpu` workers
#
# The CUDA variant needs no CUDA base image: torch's wheels bring the CUDA runtime, the host's
# NVIDIA container toolkit brings the driver.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/app/var/huggingface
WORKDIR /app

FROM base AS build
ARG TORCH_VARIANT=cpu
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements/ requirements/
# requirements/api.txt installs the Python SDK (the CLI's client commands use it) from ./sdk/python.
COPY sdk/ sdk/
# torch first, from the index of the wanted variant; the requirements then find it satisfied.
RUN TORCH_VERSION="$(sed -n 's/^torch==\(.*\)$/\1/p' requirements/worker.txt)" \
    && pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" "torch==${TORCH_VERSION}" \
    && pip install -r requirements/worker.txt -r requirements/api.txt flower

FROM base AS runtime
RUN groupadd --system --gid 10001 samo && useradd --system --uid 10001 --gid samo --home-dir /app samo
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY --chown=samo:samo . .
RUN mkdir -p /app/instance /app/var/media /app/var/huggingface \
    && chown -R samo:samo /app/instance /app/var
USER samo
# Health checks live in docker-compose.yml: only the api service serves /healthz.
EXPOSE 5000 5555
CMD ["gunicorn", "-c", "scripts/gunicorn.conf.py", "api:create_app()"]
