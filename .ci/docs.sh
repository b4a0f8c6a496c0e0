#!/usr/bin/env bash
# The documentation site: built with Sphinx with every warning an error and every cross-reference
# required to resolve (-W -n), its links inside the site checked, and its code examples run.
# The package comes from the wheel that .ci/wheel.sh left in $SHORTCUTNET_WHEELHOUSE, or is built
# here when that is not set.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/shortcutnet-docs.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "+ [docs, $SECONDS s] $*"; }

step "a fresh venv with the package and the docs extra"
python3 -m venv "$work/env"
"$work/env/bin/python" -m pip install --quiet --upgrade pip
wheel=$(ls "${SHORTCUTNET_WHEELHOUSE:-/nonexistent}"/shortcutnet-*.whl 2> /dev/null | head -n 1 || true)
if [ -n "$wheel" ]; then
  "$work/env/bin/python" -m pip install --quiet --only-binary :all: "${wheel}[docs]"
else
  "$work/env/bin/python" -m pip install --quiet ".[docs]"
fi

step "sphinx-build -W -n -b html"
# autosummary writes its pages into the source folder: build from a copy, so the checkout stays clean.
cp -r docs "$work/docs"
cp CHANGELOG.md "$work/CHANGELOG.md"
mkdir -p "$work/examples" && cp -r examples/cpp examples/numba_embedding.py "$work/examples/"
(cd "$work" && "$work/env/bin/python" -m sphinx -W --keep-going -n -q -b html docs "$work/html")

step "links inside the site"
"$work/env/bin/python" .ci/check_site_links.py "$work/html"

step "the examples of the pages (pytest --doctest-glob), and the tables' pandas and Parquet output"
cd "$work"   # the installed package, not the checkout
"$work/env/bin/python" -m pytest -c "$root/pyproject.toml" --rootdir "$work" --doctest-glob="*.md" "$work/docs" \
  -q -p no:cacheprovider
"$work/env/bin/python" -m pytest "$root/tests/test_tables.py" "$root/tests/test_docs_api.py" -q -p no:cacheprovider
step "done"
