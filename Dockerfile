# Builds the single parley binary (no cgo) into a minimal image; compose.yaml
# runs one role per container from it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /parley ./cmd/parley

FROM gcr.io/distroless/static-debian12
COPY --from=build /parley /parley
VOLUME /data
ENTRYPOINT ["/parley"]
