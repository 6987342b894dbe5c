# Multi-stage build of a static binary on distroless (nonroot).
FROM rust:1.95.0-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the product: the workspace's other members (the sandbox, the simulator, the embedded API
# server, the test beds) are read as manifests but none of them is compiled or linked in.
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p modelstudio-controller --bin modelstudio-controller \
 && cp target/x86_64-unknown-linux-musl/release/modelstudio-controller /modelstudio-controller

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /modelstudio-controller /modelstudio-controller
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/modelstudio-controller"]
CMD ["run"]
