#!/usr/bin/env bash
# Run the installed requests version's own test suite twice, against stock
# requests.Session and against microrequests.Session, and list the tests whose
# outcome differs. Runs inside a new network namespace with loopback only, so
# tests that reach for outside addresses fail at once and send nothing.
# Usage: bash tests/requests_suite/run.sh [requests|microrequests]   (as root)
#   requests (default): the session uses requests' retry default; exits 1 if
#     any test fails only against microrequests.Session.
#   microrequests: microrequests' own defaults; lists the differences.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
python=$(command -v "${PYTHON:-python}")
# Absolute (the script changes directory), but not through the symlink: a
# virtual environment's python must stay the environment's.
python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
retries=${1:-requests}
version=$($python -c "import requests; print(requests.__version__)")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$python -m pip download -q --no-deps --no-binary :all: "requests==$version" -d "$work"
tar xzf "$work/requests-$version.tar.gz" -C "$work"
# Under a name of its own: requests' "tests" package would shadow ours.
cp "$here/tests/requests_suite/plugin.py" "$work/microrequests_suite_plugin.py"
$python -m pip install -q "pytest-httpbin==2.1.0" "httpbin~=0.10.0" pytest-mock pytest-xdist trustme PySocks
cd "$work/requests-$version"
outcomes() { # label, extra environment
  env "$@" PYTHONPATH="$work" unshare -n sh -c \
    "ip link set lo up && $python -m pytest tests -q -n 2 -p no:cacheprovider -p microrequests_suite_plugin -rfE 2>&1" \
    | tee "$work/$label.log" | grep -E '^(FAILED|ERROR) ' | sed 's/ - .*//' | sort > "$work/$label.failed" || true
  grep -m1 '^requests.Session is' "$work/$label.log" || echo "(no Session line: plugin not loaded?)"
  tail -1 "$work/$label.log"
}
label=stock; echo "stock requests.Session:"; outcomes MICROREQUESTS_SUITE_STOCK=1
label=ours; echo "microrequests.Session (retries: $retries):"; outcomes MICROREQUESTS_SUITE_RETRIES="$retries"
comm -13 "$work/stock.failed" "$work/ours.failed" > "$work/only-ours"
echo "failing only against microrequests.Session:"; cat "$work/only-ours"
echo "failing only against stock requests.Session:"; comm -23 "$work/stock.failed" "$work/ours.failed"
echo "failing against both (needs the network, or this machine):"; comm -12 "$work/stock.failed" "$work/ours.failed"
grep -q passed "$work/ours.log" || { echo "the microrequests run passed nothing"; exit 1; }
# With requests' own retry default, behaviour must not differ at all.
if [ "$retries" = requests ] && [ -s "$work/only-ours" ]; then exit 1; fi
