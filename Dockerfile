# sluiceway's image: every compiled KFP component runs in it (`python3 -m kfp.dsl.executor_main`),
# with sluiceway and its locked dependencies already installed, so no task pip-installs anything.
#
#   podman build --isolation=chroot --network=host \
#       --build-arg BASE_IMAGE=localhost/sluiceway-base:bookworm \
#       --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt \
#       -t localhost/sluiceway:0.1.0 .
#
# (tests/container/build_image.sh runs exactly that; `docker build` takes the same arguments.)
#
# BASE_IMAGE: any Debian-based image with Python 3.11, or none at all: a bare Debian bookworm
# (debootstrap, as on machines without Docker Hub) gets python3 3.11 and python3-venv from apt.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# /opt/venv/bin first: `python3` (what kfp's command line calls) is the venv's, with kfp in it.
# The TF/warning settings are what the local runners set for their components (kfp_entry,
# kfp_local): task logs without Google's deprecation notices.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=3 \
    PYTHONWARNINGS=ignore::FutureWarning,ignore::DeprecationWarning \
    LANG=C.UTF-8

# The CA bundle, for builds behind a TLS-intercepting proxy, is an optional build secret
# (`--secret id=ca,src=FILE`): it is mounted at /run/secrets/ca only while a RUN step runs and is
# never written into a layer. Without the secret the steps use the base's own trust store.
#
# Python: the base's, when it is 3.11 with venv (python:3.11-slim); otherwise Debian's python3 3.11.
# ca-certificates: Debian's public roots, for tasks that reach object storage at run time.
RUN --mount=type=secret,id=ca \
    set -eu; \
    if ! python3 -c 'import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then \
        apt_ca=""; \
        if [ -s /run/secrets/ca ]; then apt_ca="-o Acquire::https::CAInfo=/run/secrets/ca"; fi; \
        apt-get $apt_ca update -q; \
        DEBIAN_FRONTEND=noninteractive apt-get $apt_ca install -y -q --no-install-recommends \
            python3 python3-venv ca-certificates; \
        rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    fi; \
    python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), f"sluiceway needs Python 3.11, the base has {sys.version}"'; \
    python3 -m venv "$VIRTUAL_ENV"; \
    useradd --uid 1000 --create-home --shell /usr/sbin/nologin sluiceway

# The lock alone first: this layer (the big one, TensorFlow and friends) is rebuilt only when
# requirements.lock changes, not when sluiceway's code does. --no-deps as in the Makefile: every
# package is pinned, there is nothing to resolve. Two locked packages are sdists with C extensions
# (pyfarmhash needs a compiler; crcmod is faster with one), so a C/C++ toolchain (and Python's
# headers when the base's Python is Debian's) is installed for this step and purged in the same
# layer, the official python images' way: only what pip built stays.
COPY requirements.lock /tmp/requirements.lock
RUN --mount=type=secret,id=ca \
    set -eu; \
    apt_ca=""; \
    if [ -s /run/secrets/ca ]; then apt_ca="-o Acquire::https::CAInfo=/run/secrets/ca"; export PIP_CERT=/run/secrets/ca; fi; \
    saved_apt_mark="$(apt-mark showmanual)"; \
    build_deps="gcc g++ libc6-dev"; \
    if [ ! -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ]; then \
        build_deps="$build_deps python3-dev"; \
    fi; \
    apt-get $apt_ca update -q; \
    DEBIAN_FRONTEND=noninteractive apt-get $apt_ca install -y -q --no-install-recommends $build_deps; \
    python3 -m pip install --quiet --no-deps -r /tmp/requirements.lock; \
    apt-mark auto '.*' >/dev/null; \
    if [ -n "$saved_apt_mark" ]; then apt-mark manual $saved_apt_mark >/dev/null; fi; \
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q --auto-remove -o APT::AutoRemove::RecommendsImportant=false; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /tmp/requirements.lock /root/.cache

# sluiceway itself, non-editable: the pipeline/ and components/ packages land in site-packages, so
# the task's code is the code of this image whatever the working directory. setuptools and wheel
# come from the lock, so the build needs no network (--no-build-isolation). README.md: setup.py
# reads it. schemas/ and examples/ are not needed at run time (a curated schema travels in the
# compiled spec's parameters; data is mounted).
COPY setup.py README.md /tmp/sluiceway-src/
COPY pipeline /tmp/sluiceway-src/pipeline
COPY components /tmp/sluiceway-src/components
RUN set -eu; \
    python3 -m pip install --quiet --no-deps --no-build-isolation /tmp/sluiceway-src; \
    python3 -m pip check; \
    rm -rf /tmp/sluiceway-src; \
    cd / && python3 -c 'import kfp, pipeline.cli, components.common.kfp_entry'

USER sluiceway
WORKDIR /home/sluiceway
CMD ["sluiceway", "--help"]

# Last, so a new version or revision only relabels the image. build_image.sh passes the git
# remote and commit (the project has no canonical public URL yet, so SOURCE has no default) and
# a hash of the code copied in (setup.py, pipeline/, components/): a working tree with uncommitted
# changes has no revision that names it, and a runner can compare this hash with its own tree's
# to refuse a stale image.
ARG VERSION=0.1.0
ARG SOURCE=""
ARG REVISION=""
ARG CODE_SHA256=""
LABEL org.opencontainers.image.title="sluiceway" \
      org.opencontainers.image.description="Declarative TFX-style ML pipelines: the image every compiled component runs in" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      dev.sluiceway.code-sha256="${CODE_SHA256}"
