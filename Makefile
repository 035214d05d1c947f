# Writ — the commands a developer and CI run.
CARGO ?= cargo
# The end-to-end tests mostly wait on servers and PostgreSQL: four at a time suits two cores.
TEST_THREADS ?= 4

.PHONY: run test test-deps lint bench openapi build fmt

## Serve the API on 127.0.0.1:8080 with a private PostgreSQL under .writ/ and a demo agency.
run:
	$(CARGO) build --bin writ
	./target/debug/writ dev

## Every test: unit tests and the end-to-end tests (real PostgreSQL, real server over HTTP).
test: test-deps
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast -- --test-threads $(TEST_THREADS)

## What the tests need besides Rust, installed when missing (tests/deps.sh): PostgreSQL,
## poppler-utils and openssl, and moto in .writ/venv unless moto_server is already on PATH.
test-deps:
	@tests/deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate openapi/openapi.json from the code (a test fails when it drifts).
openapi:
	$(CARGO) run --quiet --bin writ -- openapi > openapi/openapi.json

## Benchmarks (results in docs/PERFORMANCE.md), each against a baseline measured in the same run:
## audit appends (vs a naive FOR UPDATE chain head), writ-verify on a 1,000,000-entry export
## (vs sha256sum of its log.jsonl), inclusion proofs at 10,000,000 entries (vs a PK SELECT),
## authenticated reads and audited writes over HTTP at 16 and 64 connections (vs pgbench's
## single-row INSERT on the same cluster, and the write's own SQL through pgbench), document upload and download of 1 GiB over HTTP (vs
## raw AES-256-GCM of the same crate) with the server's peak memory at two sizes.
bench:
	$(CARGO) build --release --workspace --bins
	$(CARGO) run --release -p writ-testkit --bin audit_bench
	$(CARGO) run --release -p writ-testkit --bin verify_bench
	$(CARGO) run --release -p writ-testkit --bin proof_bench
	$(CARGO) run --release -p writ-testkit --bin http_bench
	$(CARGO) run --release -p writ-testkit --bin document_bench
