#!/usr/bin/env bash
# README command 2 (and CI): set up what the tests need, then run the default suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow` for the slow suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev || exit $?
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False ANONYMIZED_TELEMETRY=False
# The dependency direction (contracts in pyproject.toml [tool.importlinter]) before any test runs.
if ! .venv/bin/lint-imports --no-logo; then
  echo "scripts/test.sh: lint-imports found an import that breaks a layer contract (see above)" >&2
  exit 1
fi
# Every directly imported third-party package is declared ([tool.deptry] in pyproject.toml).
if ! .venv/bin/deptry .; then
  echo "scripts/test.sh: deptry found an undeclared or unused dependency (see above)" >&2
  exit 1
fi
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "scripts/test.sh: pytest collected no tests: the suite is missing or deselected everything" >&2
  exit 1
fi
exit "$rc"
