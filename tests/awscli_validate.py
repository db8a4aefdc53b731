"""Runs the AWS CLI's own digest validator (awscli/customizations/cloudtrail/
validation.py, PyPI `awscli`) over a trailkeep bucket on a local endpoint.

The AWS CLI finds public keys through CloudTrail's ListPublicKeys; here they
come from a PEM file (PKCS#1), handed to the same DigestTraverser the CLI
builds. Log files are checked by the CLI command's own `_download_log`.
Prints one JSON object: digests found valid, every problem reported, each
gap (a digest with no link to a previous one while older digests remain:
the CLI's on_gap, one per stop and restart) and the log file counts. Used by tests/integration/digests.rs.

usage: awscli_validate.py ENDPOINT BUCKET ACCOUNT TRAIL HOME_REGION REGION START END PEM [ORG_ID OWNER]

With ORG_ID (an organization trail owned by account OWNER), ACCOUNT is the
member account (`--account-id`), and the traverser is built by the CLI's own
create_digest_traverser from stubbed DescribeTrails (IsOrganizationTrail),
ListPublicKeys and Organizations DescribeOrganization answers.
"""
import base64
import hashlib
import json
import sys
from datetime import datetime, timezone

import boto3
import rsa
from awscli.customizations.cloudtrail.validation import (
    CloudTrailValidateLogs,
    create_digest_traverser,
    DigestProvider,
    DigestTraverser,
)


class OneClient:
    """The CLI's S3ClientProvider, for one local endpoint."""

    def __init__(self, client):
        self.client = client

    def get_client(self, bucket_name):
        return self.client


class PemKeys:
    """The CLI's PublicKeyProvider, answering from a PEM file."""

    def __init__(self, pem):
        der = rsa.PublicKey.load_pkcs1(pem, "PEM").save_pkcs1("DER")
        fingerprint = hashlib.md5(der).hexdigest()
        self.keys = {fingerprint: {"Fingerprint": fingerprint, "Value": base64.b64encode(der)}}

    def get_public_keys(self, start_date, end_date):
        return self.keys


class OrgTrail:
    """CloudTrail (DescribeTrails, ListPublicKeys) and Organizations
    (DescribeOrganization) as the CLI sees them for an organization trail."""

    def __init__(self, arn, bucket, org_id, keys):
        self.arn, self.bucket, self.org_id, self.keys = arn, bucket, org_id, keys

    def describe_trails(self):
        return {"trailList": [{
            "TrailARN": self.arn,
            "S3BucketName": self.bucket,
            "IsOrganizationTrail": True,
        }]}

    def list_public_keys(self, StartTime, EndTime):
        return {"PublicKeyList": list(self.keys.get_public_keys(StartTime, EndTime).values())}

    def describe_organization(self):
        return {"Organization": {"Id": self.org_id}}


def when(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def main():
    endpoint, bucket, account, trail, home, region, start, end, pem = sys.argv[1:10]
    org_id, owner = (sys.argv[10:12] + [None, None])[:2]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    clients = OneClient(s3)
    with open(pem, "rb") as f:
        keys = PemKeys(f.read())
    problems = []
    gaps = []
    callbacks = dict(
        on_invalid=lambda message=None, **kw: problems.append(message),
        on_missing=lambda last_key=None, **kw: problems.append(f"missing {last_key}"),
        on_gap=lambda **kw: gaps.append({k: str(v) for k, v in sorted(kw.items())}),
    )
    if org_id:
        stub = OrgTrail(f"arn:aws:cloudtrail:{home}:{owner}:trail/{trail}", bucket, org_id, keys)
        traverser = create_digest_traverser(
            cloudtrail_client=stub,
            organization_client=stub,
            s3_client_provider=clients,
            trail_arn=stub.arn,
            trail_source_region=region,
            account_id=account,
            **callbacks,
        )
    else:
        traverser = DigestTraverser(
            digest_provider=DigestProvider(clients, account, trail, home, trail_source_region=region),
            starting_bucket=bucket,
            starting_prefix=None,
            public_key_provider=keys,
            **callbacks,
        )
    command = CloudTrailValidateLogs.__new__(CloudTrailValidateLogs)
    command.s3_client_provider = clients
    command.is_verbose = False
    command._is_last_status_double_space = True
    command._valid_logs = 0
    command._invalid_logs = 0
    digests = 0
    for digest in traverser.traverse_digests(when(start), when(end)):
        digests += 1
        for log in digest["logFiles"]:
            command._download_log(log)
    print(json.dumps({
        "digests": digests,
        "problems": problems,
        "gaps": gaps,
        "validLogs": command._valid_logs,
        "invalidLogs": command._invalid_logs,
    }))


if __name__ == "__main__":
    main()
