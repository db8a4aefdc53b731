"""Turns a payload file into the Lambda event of one ingest-queue batch.

    sqs_batch.py QUEUE_URL FILE           send FILE to the queue (as an
                                          EventBridge rule or S3 would),
                                          receive it (as Lambda's poller
                                          would) and print the event
    sqs_batch.py QUEUE_URL FILE --forge   print the same event shape with a
                                          made-up receipt handle, as someone
                                          invoking the function directly
                                          would (ingest refuses it)

The sample payloads in events/ carry fixed dates; ingest refuses an
eventTime outside the history's retention, so every valid timestamp in the
payload is moved to the same time of day yesterday (UTC): in the past,
inside the retention, and the same for a re-delivery of the same file.
"""
import datetime
import hashlib
import json
import sys
import uuid

import boto3


def recent(payload: str) -> str:
    """The payload with each valid event time moved to yesterday."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(doc, dict):
        return payload
    yesterday = datetime.datetime.now(datetime.timezone.utc).date() - datetime.timedelta(days=1)

    def move(obj, key):
        if isinstance(obj, dict) and isinstance(obj.get(key), str):
            try:
                t = datetime.datetime.fromisoformat(obj[key].replace("Z", "+00:00"))
            except ValueError:
                return  # a bad time stays bad
            t = t.astimezone(datetime.timezone.utc) + (yesterday - t.date())
            obj[key] = t.strftime("%Y-%m-%dT%H:%M:%SZ")

    move(doc, "time")
    move(doc.get("detail"), "eventTime")
    for record in doc.get("Records") or []:
        move(record, "eventTime")
    return json.dumps(doc)


def main() -> None:
    queue_url, path = sys.argv[1], sys.argv[2]
    forge = sys.argv[3:] == ["--forge"]
    body = recent(open(path, encoding="utf-8").read())
    account, name = queue_url.rstrip("/").split("/")[-2:]
    region = boto3.session.Session().region_name
    if forge:
        message = {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": "AQEBforged" + uuid.uuid4().hex,
            "Body": body,
            "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "Attributes": {"SentTimestamp": "0"},
        }
    else:
        sqs = boto3.client("sqs")
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        got = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=2,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            sys.exit(f"nothing received from {queue_url}")
        message = got[0]
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{region}:{account}:{name}",
        "awsRegion": region,
    }
    json.dump({"Records": [record]}, sys.stdout)


if __name__ == "__main__":
    main()
