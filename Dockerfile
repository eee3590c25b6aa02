# wxcc-mock in a container: a static (musl) build, then a small Alpine image that runs
# `wxcc-mock serve` on 0.0.0.0:8080. Give it an admin token, since /__admin is then reachable
# from outside the container:
#
#   docker build -t wxcc-mock .
#   docker run --rm -p 8080:8080 -e WXCC_MOCK_ADMIN_TOKEN=change-me wxcc-mock
#
# Every serve flag has an environment variable (wxcc-mock serve --help), and arguments after the
# image name replace `serve`.

FROM rust:1.95-alpine3.22 AS build
# The allocator (mimalloc) is C, built against musl.
# hadolint ignore=DL3018
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin wxcc-mock --bin wxcc-contract \
    && strip target/release/wxcc-mock target/release/wxcc-contract

FROM alpine:3.22
RUN adduser -D -H -u 10001 wxcc
COPY --from=build /src/target/release/wxcc-mock /src/target/release/wxcc-contract /usr/local/bin/
USER 10001
ENV WXCC_MOCK_HOST=0.0.0.0 \
    WXCC_MOCK_PORT=8080
EXPOSE 8080
# /__admin/health answers 200 (with the admin token when one is set).
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s --retries=3 \
    CMD ["/bin/sh", "-c", "wget -q -O /dev/null --header \"Authorization: Bearer ${WXCC_MOCK_ADMIN_TOKEN:-}\" http://127.0.0.1:${WXCC_MOCK_PORT:-8080}/__admin/health || exit 1"]
ENTRYPOINT ["wxcc-mock"]
CMD ["serve"]
