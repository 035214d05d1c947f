#!/usr/bin/env bash
# What the tests need besides Rust, installed when missing: PostgreSQL's server programs,
# poppler-utils and openssl (the evidence certificate's PDF is rendered and its timestamp checked
# by hand), and moto (AWS KMS and S3 on their wire protocols) in .writ/venv.
set -euo pipefail
cd "$(dirname "$0")/.."

have_postgres() {
    command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
have_pdf_tools() {
    local tool
    for tool in pdftoppm pdftotext pdfdetach openssl; do
        command -v "$tool" >/dev/null 2>&1 || return 1
    done
}

packages=()
have_postgres || packages+=(postgresql)
have_pdf_tools || packages+=(poppler-utils openssl)
if [ ${#packages[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "the tests need: ${packages[*]} (install them, e.g. apt-get install ${packages[*]})" >&2
        exit 1
    fi
    echo "installing ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if ! command -v moto_server >/dev/null 2>&1 && [ ! -x .writ/venv/bin/moto_server ]; then
    echo "installing moto into .writ/venv"
    python3 -m venv .writ/venv
    .writ/venv/bin/pip install --quiet 'moto[server]==5.*'
fi
