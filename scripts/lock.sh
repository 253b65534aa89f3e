#!/usr/bin/env bash
# Re-resolve the pinned requirement files from the direct dependencies listed here.
# Each set resolves in its own throw-away venv so that pins never mix (SAM pins boto3).
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/find-python.sh)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

RUNTIME=("aws-lambda-powertools[tracer]" boto3 numpy requests tzdata)  # tzdata: Lambda images may lack zoneinfo; numpy: the duplicate index
DEV=(aiohttp setuptools hypothesis "moto[server]" duckdb fsspec pytz mypy pytest pytest-timeout responses ruff trustme types-requests types-PyYAML
     "boto3-stubs[s3,sqs,dynamodb,secretsmanager,sns,scheduler]")
TOOLS=(aws-sam-cli cfn-lint)
SCAN=(checkov)

freeze() {  # freeze NAME PACKAGES...: install into a new venv, print its pins
  local name=$1; shift
  "$python" -m venv "$work/$name"
  "$work/$name/bin/pip" install --quiet --disable-pip-version-check "$@"
  "$work/$name/bin/pip" freeze --exclude-editable
}

{ echo "# The Lambda layer's runtime dependencies, pinned (sam build installs these into the layer)."
  echo "# Regenerate: make lock"
  freeze runtime "${RUNTIME[@]}"; } > shared/requirements.txt

freeze dev -r shared/requirements.txt "${DEV[@]}" > "$work/dev.txt"
{ echo "# Development and test dependencies, pinned (the runtime pins come from the layer)."
  echo "# Regenerate: make lock"
  echo "-r shared/requirements.txt"
  grep -v -i -x -F -f <(grep '==' shared/requirements.txt) "$work/dev.txt"; } > requirements-dev.txt

{ echo "# aws-sam-cli and cfn-lint pin their own boto3: they live in .tools-venv, never beside the project."
  echo "# Regenerate: make lock"
  freeze tools "${TOOLS[@]}"; } > requirements-tools.txt
{ echo "# checkov (the infrastructure-as-code scanner) pins its own boto3: it lives in .scan-venv."
  echo "# Regenerate: make lock"
  freeze scan "${SCAN[@]}"; } > requirements-scan.txt
echo "pinned: shared/requirements.txt requirements-dev.txt requirements-tools.txt requirements-scan.txt"
