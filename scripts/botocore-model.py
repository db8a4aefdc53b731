"""Writes trailkeep's botocore service model (cli/models/trailkeep/) from the
pinned botocore's CloudTrail model: the operations trailkeep's API answers,
every shape they reach, CloudTrail's paginators for them, and metadata that
makes the AWS CLI and boto3 sign for the Lambda function URL (signing name
`lambda`) under their own service name `trailkeep`. `--check` fails when the
committed files differ from what the pinned botocore gives (scripts/test.sh).

The operation list must be the API's (`shared/src/api/mod.rs`
`Operation::ALL`); `cli/src/aws_model.rs` tests that it is.
"""
import argparse
import json
import os
import sys

import botocore
from botocore.loaders import Loader

OPERATIONS = [
    "LookupEvents",
    "CreateTrail",
    "UpdateTrail",
    "DeleteTrail",
    "DescribeTrails",
    "GetTrail",
    "ListTrails",
    "GetTrailStatus",
    "StartLogging",
    "StopLogging",
    "PutEventSelectors",
    "GetEventSelectors",
    "AddTags",
    "RemoveTags",
    "ListTags",
    "ListPublicKeys",
]
API_VERSION = "2013-11-01"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli", "models", "trailkeep", API_VERSION)


def reachable(shapes, names):
    """Every shape the named shapes refer to, themselves included."""
    seen = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        shape = shapes[name]
        refs = list(shape.get("members", {}).values())
        refs += [shape[k] for k in ("member", "key", "value") if k in shape]
        todo += [r["shape"] for r in refs]
    return seen


def build():
    loader = Loader()
    service = loader.load_service_model("cloudtrail", "service-2", API_VERSION)
    paginators = loader.load_service_model("cloudtrail", "paginators-1", API_VERSION)
    ops = {name: service["operations"][name] for name in OPERATIONS}
    roots = []
    for op in ops.values():
        roots += [op[k]["shape"] for k in ("input", "output") if k in op]
        roots += [e["shape"] for e in op.get("errors", [])]
    shapes = service["shapes"]
    keep = reachable(shapes, roots)
    metadata = dict(service["metadata"])
    metadata.update(
        {
            "serviceId": "trailkeep",
            "serviceFullName": "trailkeep (CloudTrail's trail API on an AWS Lambda function URL)",
            "serviceAbbreviation": "trailkeep",
            "endpointPrefix": "trailkeep",
            # A function URL with AWS_IAM auth checks signatures for Lambda.
            "signingName": "lambda",
            "uid": "trailkeep-" + API_VERSION,
        }
    )
    metadata.pop("auth", None)  # SigV4 only (signatureVersion v4)
    model = {
        "version": service.get("version", "2.0"),
        "metadata": metadata,
        "operations": ops,
        "shapes": {k: shapes[k] for k in sorted(keep)},
        "documentation": "trailkeep's API: CloudTrail's trail operations and LookupEvents on a trailkeep "
        "deployment's function URL (stack output ApiUrl). Generated from botocore "
        + botocore.__version__
        + "'s CloudTrail model by scripts/botocore-model.py.",
    }
    pages = {
        "pagination": {k: v for k, v in paginators["pagination"].items() if k in OPERATIONS}
    }
    return {
        "service-2.json": json.dumps(model, indent=1, sort_keys=True) + "\n",
        "paginators-1.json": json.dumps(pages, indent=1, sort_keys=True) + "\n",
    }


def pinned_botocore():
    """The botocore version scripts/requirements.lock pins."""
    lock = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requirements.lock")
    for line in open(lock):
        if line.startswith("botocore=="):
            return line.split("==", 1)[1].split()[0]
    return None


def main():
    pinned = pinned_botocore()
    if botocore.__version__ != pinned:
        sys.exit(
            "botocore %s is not the pinned %s (scripts/requirements.lock): run this with the project's venv "
            "(scripts/lib.sh ensure_venv), whose model is the one committed" % (botocore.__version__, pinned)
        )
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--check", action="store_true", help="fail if the committed model differs")
    args = p.parse_args()
    stale = []
    for name, text in build().items():
        path = os.path.join(OUT, name)
        if args.check:
            have = open(path).read() if os.path.exists(path) else None
            if have != text:
                stale.append(path)
        else:
            os.makedirs(OUT, exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            print("wrote", os.path.normpath(path))
    if stale:
        sys.exit(
            "stale: %s; run python3 scripts/botocore-model.py with the pinned botocore (scripts/requirements.lock)"
            % ", ".join(stale)
        )


if __name__ == "__main__":
    main()
