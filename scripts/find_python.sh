#!/bin/sh
# Prints the path of a Python the project supports (3.13, else 3.12), or fails saying so.
# A pyenv shim for a version that is installed but not selected fails when run, so each
# candidate is run, not just looked up; pyenv's own versions are tried last.
for candidate in "${PYTHON:-}" python3.13 python3.12 \
    "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13 \
    "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
  [ -n "$candidate" ] || continue
  if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3, 13), (3, 12)) else 1)' \
      >/dev/null 2>&1; then
    "$candidate" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "error: this project needs Python 3.13 (preferred) or 3.12; none was found." >&2
echo "Install one (e.g. 'pyenv install 3.13' or your OS's python3.13 package)," >&2
echo "or name it: make PYTHON=/path/to/python3.13 ..." >&2
exit 1
