#!/usr/bin/env bash
# Lint template.yaml offline (no AWS account; dummy credentials and a region):
#   1. cfn-lint template.yaml                  (SAM-aware CloudFormation linter; exit 2 on errors)
#   2. sam validate --lint                     (SAM's own validation + cfn-lint)
#   3. cfn-lint on the template AFTER the SAM transform: catches what only shows once SAM has
#      expanded its resources, e.g. a circular dependency between a function and its API
#      (cfn-lint E3004), which step 1 does not see.
# Installs the tools (scripts/python-tools.sh) first.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/python-tools.sh
export PATH="$PWD/.tools/venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-parkpaylocal} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-parkpaylocal}
export AWS_REGION=${AWS_REGION:-ap-south-1}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-$AWS_REGION}
template=${1:-template.yaml}

echo "cfn-lint $template"
cfn-lint "$template"

echo "sam validate --lint"
sam validate --lint --template-file "$template"

echo "cfn-lint after the SAM transform"
mkdir -p target/serverless
python3 - "$template" target/serverless/template.transformed.json <<'PY'
import json, sys
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

template, out = sys.argv[1], sys.argv[2]
doc, matches = decode(template)
if matches:
    sys.exit("\n".join(str(m) for m in matches))
# The transform wants an S3 location for code; `sam build`/`sam deploy` put one there.
code = "s3://parkpay-lint-placeholder/code.zip"
doc.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
for res in doc["Resources"].values():
    if res.get("Type") == "AWS::Serverless::Function":
        res.setdefault("Properties", {})["CodeUri"] = code

class Policies:
    def load(self):
        return {"AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}

with open(out, "w") as f:
    json.dump(transform(doc, {}, Policies()), f, indent=1, default=str)
PY
cfn-lint target/serverless/template.transformed.json
echo "ok: $template passes cfn-lint, sam validate --lint and the post-transform lint"
