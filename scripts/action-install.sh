#!/usr/bin/env bash
# The GitHub Action's install step (action.yml): skycheck from the action's own checkout,
# at the ref the workflow pinned, into a virtual environment of its own under $RUNNER_TEMP
# (never the runner's Python, never a package index's "skycheck").
set -euo pipefail
: "${SKYCHECK_ACTION_PATH:?}" "${RUNNER_TEMP:?}" "${GITHUB_OUTPUT:?}"
venv="$RUNNER_TEMP/skycheck-action-venv"
if [ ! -x "$venv/bin/python" ]; then
  "${INPUT_PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$SKYCHECK_ACTION_PATH"
"$venv/bin/skycheck" --version
echo "python=$venv/bin/python" >> "$GITHUB_OUTPUT"
