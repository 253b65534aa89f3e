#!/usr/bin/env bash
# Prints the path of a Python 3.13 interpreter (the Lambda runtime's version), or fails.
# Order: $PYTHON, python3.13 on PATH (if it really runs), pyenv, uv-managed, common prefixes.
set -euo pipefail
want="3.13"

works() { [ -n "$1" ] && "$1" -c "import sys; sys.exit(sys.version_info[:2] != (3, 13))" >/dev/null 2>&1; }

candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
command -v "python$want" >/dev/null 2>&1 && candidates+=("$(command -v "python$want")")
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for dir in $(ls -d "$root"/versions/"$want"* 2>/dev/null | sort -rV); do
    candidates+=("$dir/bin/python$want")
  done
fi
for dir in $(ls -d "$HOME"/.local/share/uv/python/cpython-"$want"* 2>/dev/null | sort -rV); do
  candidates+=("$dir/bin/python$want")
done
candidates+=("/usr/local/bin/python$want" "/usr/bin/python$want")

for candidate in "${candidates[@]}"; do
  if works "$candidate"; then
    # Resolve pyenv shims to the real interpreter so venvs do not depend on PYENV_VERSION.
    "$candidate" -c "import sys; print(sys.executable)"
    exit 0
  fi
done
echo "find-python: no Python $want found; install it (e.g. 'pyenv install $want') or set PYTHON=/path/to/python$want" >&2
exit 1
