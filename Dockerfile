# syntax=docker/dockerfile:1
#
# One image recipe for every service: SERVICE picks the folder under services/ and
# PORT the port the service listens on (the appPort of dapr.yaml), for example
#
#   docker build --build-arg SERVICE=catalog --build-arg PORT=8081 -t daprshop/catalog:dev .
#
# `make images` builds all seven this way.

# GO_VERSION is the toolchain that builds the binary: the one go.mod's
# `toolchain` line names, with which `make test` runs, so that the binary is the
# one the tests ran and carries the standard library's fixes `make vulncheck`
# asks for. (The golang images set GOTOOLCHAIN=local and ignore that line.)
ARG GO_VERSION=1.26.10

FROM golang:${GO_VERSION} AS build
ARG SERVICE
WORKDIR /src
# The module files first: the download layer is reused until go.mod or go.sum
# change, which is far rarer than a change of code.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY internal/ internal/
COPY services/ services/
# A missing or misspelled SERVICE fails here with a clear message instead of as
# a "no Go files" error further down.
RUN test -n "${SERVICE}" && test -f "services/${SERVICE}/main.go" || \
    { echo "build with --build-arg SERVICE=<one of: $(ls services | tr '\n' ' ')>" >&2; exit 1; }
# CGO_ENABLED=0 gives a static binary that needs no libc, so the runtime image can
# be distroless/static; -trimpath keeps build paths out of the binary and its
# stack traces; -s -w drops the symbol and DWARF tables the runtime does not use.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags="-s -w" -o /out/service "./services/${SERVICE}"

# distroless/static has no shell, no package manager and no libc: only CA
# certificates, tzdata and /etc/passwd with the nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
ARG SERVICE
ARG PORT=8080
LABEL org.opencontainers.image.title="daprshop-${SERVICE}" \
      org.opencontainers.image.source="https://github.com/daprshop/daprshop"
COPY --from=build /out/service /service
# The image's default port is the one it exposes; Kubernetes and the runner set
# APP_PORT explicitly anyway.
ENV APP_PORT=${PORT}
EXPOSE ${PORT}
# Numeric, so that the kubelet can prove runAsNonRoot without a runAsUser in the
# pod spec (a user name cannot be checked without reading the image's passwd).
USER 65532:65532
ENTRYPOINT ["/service"]
