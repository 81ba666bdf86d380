#!/usr/bin/env bash
# Docker executor tests (tests/test_docker_executor.py): a Docker engine (Debian's docker.io) and
# debootstrap, which builds the executor's base image (no image hub is reachable). Called from
# .ci/run after `pip install -e`; the tests start dockerd themselves if none answers, and skip with
# the reason where none can start.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
fi

# Start the engine and build the base image once (about a minute) before the tests run. Not fatal:
# where it cannot be done, the docker tests skip and say why.
if python3 -c "import docker, harness" 2>/dev/null; then
  python3 -m harness.executors.docker start-engine || echo "docker-setup: no engine; the docker tests will skip"
  python3 -m harness.executors.docker build-image || echo "docker-setup: no base image; the docker tests will skip"
  # The same plus Debian's python3: the tests of interpreters taken from the image use it.
  python3 -m harness.executors.docker build-image --include python3 \
    || echo "docker-setup: no image with python3; the image-interpreter tests will skip"
fi
