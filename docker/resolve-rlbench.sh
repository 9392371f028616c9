#!/usr/bin/env bash
# Resolve the RLBench image's Python packages without Docker: pip's dry run for the image's Python (3.10) and
# platform (glibc 2.35 x86_64), wheels only, with docker/rlbench-requirements.txt as both the first install and
# the constraints of mirror's own install, exactly as docker/Dockerfile.rlbench installs them.
# Prints the packages the image would get; exits non-zero if they do not resolve.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
REQS=docker/rlbench-requirements.txt
platforms=(--platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
for minor in $(seq 5 35); do platforms+=(--platform "manylinux_2_${minor}_x86_64"); done
target=$(mktemp -d)
report=$(mktemp)
trap 'rm -rf "$target" "$report"' EXIT
"$PYTHON" -m pip install --dry-run --quiet --ignore-installed --report "$report" --target "$target" \
  --python-version 3.10 "${platforms[@]}" --only-binary=:all: -r "$REQS" -c "$REQS" ".[dev]"
"$PYTHON" - "$report" <<'EOF'
import json
import sys

installed = json.load(open(sys.argv[1]))["install"]
print("\n".join(sorted(f"{i['metadata']['name']}=={i['metadata']['version']}" for i in installed)))
print(f"resolved {len(installed)} packages for Python 3.10", file=sys.stderr)
EOF
