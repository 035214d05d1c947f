# Writ — the commands a developer and CI run.
CARGO ?= cargo

.PHONY: run test lint bench openapi build fmt

## Serve the API on 127.0.0.1:8080 with a private PostgreSQL under .writ/ and a demo agency.
run:
	$(CARGO) build --bin writ
	./target/debug/writ dev

## Every test: unit tests and the end-to-end tests (real PostgreSQL, real server over HTTP).
test:
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

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
## (vs sha256sum of its log.jsonl), inclusion proofs at 10,000,000 entries (vs a PK SELECT).
bench:
	$(CARGO) build --release --workspace --bins
	$(CARGO) run --release -p writ-testkit --bin audit_bench
	$(CARGO) run --release -p writ-testkit --bin verify_bench
	$(CARGO) run --release -p writ-testkit --bin proof_bench
