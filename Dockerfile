# One image for every egressgw component: `egressgw controller`, `egressgw agent`,
# `egressgw cni-manager` and the CNI plugins kube-egress-cni / kube-egress-cni-ipam
# (deploy/helm/egressgw runs each with its own command). Build from the repository root:
#
#   docker build -t <registry>/egressgw:0.1.0 .
#
# Everything the image adds lives under /opt/egressgw: a relocatable CPython (python-build-
# standalone, installed by uv) and a virtualenv with the project. The CNI manager's init container
# copies that directory to the same path on the node, where the container runtime runs the plugin
# launchers the manager writes (docs/pod-side.md, docs/install.md).
# Not built by this repository's CI (it has no container engine); hadolint checks this file.

ARG PYTHON_VERSION=3.11

FROM ghcr.io/astral-sh/uv:0.13.8 AS uv

FROM debian:bookworm-slim AS build
ARG PYTHON_VERSION
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_INSTALL_DIR=/opt/egressgw/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN uv python install "${PYTHON_VERSION}" \
    && uv venv --python "${PYTHON_VERSION}" /opt/egressgw/venv
WORKDIR /src
COPY pyproject.toml ./
COPY contracts ./contracts
COPY kubeclient ./kubeclient
COPY workflows ./workflows
COPY activities ./activities
COPY watchers ./watchers
COPY agent ./agent
COPY egressgw ./egressgw
RUN uv pip install --python /opt/egressgw/venv/bin/python . \
    && /opt/egressgw/venv/bin/egressgw --help >/dev/null \
    && test -x /opt/egressgw/venv/bin/kube-egress-cni \
    && test -x /opt/egressgw/venv/bin/kube-egress-cni-ipam

FROM debian:bookworm-slim
# What the processes run on a node: ip (iproute2), iptables-restore and nft for SNAT and the
# pods' marks, wg and wireguard-go for nodes without the WireGuard module, sysctl (procps).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        iproute2 \
        iptables \
        nftables \
        procps \
        wireguard-go \
        wireguard-tools \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 egressgw \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin egressgw
COPY --from=build /opt/egressgw /opt/egressgw
ENV PATH=/opt/egressgw/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The controller runs as this user; the agent and the CNI manager need root for the node's
# network and CNI directories, which the chart asks for per container (runAsUser: 0).
USER 65532:65532
ENTRYPOINT ["egressgw"]
CMD ["--help"]
