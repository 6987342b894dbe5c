# The controller's image (the default target) and the simulator's (`--target simulator`: a test
# tool, never in the controller's image). From scratch: the binary, the C libraries it links
# (glibc, libgcc_s) and their loader taken from Debian 12 packages as distroless images are made,
# CA certificates, /etc/passwd and /etc/group with nonroot (65532). No shell, no package manager.
#
# The build context is not the repository but the folder scripts/build-image.sh stages: it builds
# the release binary, stages that folder and builds this file with buildah (no daemon) or docker,
# in one command (docs/image.md):
#   scripts/build-image.sh controller [--tag REF] [--out FILE] [--builder buildah|docker]
# The staged folder holds
#   base/   what both images share: /etc, the loader and libraries, the CA bundle, copyrights
#   app/    the one binary, at /
# The script passes the build arguments below from Cargo.toml and git, and the label
# org.opencontainers.image.source (--label) when it knows the repository's URL.

FROM scratch AS base
COPY base/ /
USER 65532:65532

FROM base AS simulator
ARG VERSION
ARG REVISION
ARG CREATED
ARG LICENSES
ARG DESCRIPTION
LABEL org.opencontainers.image.title="modelstudio-simulator" \
      org.opencontainers.image.description="${DESCRIPTION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="${LICENSES}"
COPY app/ /
# In a pod it serves beyond loopback (the binary's own default is 127.0.0.1:8089).
ENV SIMULATOR_ADDR=0.0.0.0:8089
EXPOSE 8089
ENTRYPOINT ["/modelstudio-simulator"]

# Last, so that a build without --target gives the controller.
FROM base AS controller
ARG VERSION
ARG REVISION
ARG CREATED
ARG LICENSES
ARG DESCRIPTION
LABEL org.opencontainers.image.title="modelstudio-controller" \
      org.opencontainers.image.description="${DESCRIPTION}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="${LICENSES}"
COPY app/ /
EXPOSE 8080
ENTRYPOINT ["/modelstudio-controller"]
CMD ["run"]
