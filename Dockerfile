# One image for everything of this project that docker-compose.yml runs: the worker, the one-shot
# stream-app commands, the Genesys Cloud emulator and the CRM webhook receiver.
#
#   docker build -t stream-app:local .
#   docker run --rm stream-app:local stream-app --help

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The project and its dependencies go into a virtual environment, so the runtime stage copies one
# folder and carries no build files.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# README.md is the package's long description in pyproject.toml, so the build reads it.
COPY pyproject.toml README.md ./
COPY stream_app ./stream_app
COPY schemas ./schemas
COPY local_stack ./local_stack
# The stack extra brings moto's S3 server, which local_stack imports.
# NOTE: every dependency installs from a binary wheel on linux/amd64 with Python 3.11. On other
# platforms pip may need to compile one, and this stage has no C compiler.
RUN pip install '.[stack]'


FROM python:3.11-slim

RUN useradd --system --uid 10001 --create-home stream-app \
    && mkdir -p /var/lib/stream-app \
    && chown stream-app /var/lib/stream-app

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    STREAM_APP_DATA_DIR=/var/lib/stream-app

# /app/demo_data points at the demo CSV and mapping file that the package installs, so commands
# can name them by a short path.
WORKDIR /app
RUN ln -s "$(python -c 'import pathlib, stream_app; print(pathlib.Path(stream_app.__file__).parent / "demo_data")')" /app/demo_data

USER stream-app
CMD ["stream-app", "--help"]
