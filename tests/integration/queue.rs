//! The ingest queue on moto: only messages really received from it are
//! ingested (issue 21, item 1; docs/security.md "Only AWS speaks as AWS").

use aws_sdk_sqs::Client;
use trailkeep_shared::aws::sqs::SqsReceipts;
use trailkeep_shared::ingest::normalize::Context;
use trailkeep_shared::ingest::queue::{ingest_batch, Message, Receipt, Receipts};
use trailkeep_shared::testkit::{api_call, IngestFakes, ACCOUNT};

use crate::helpers::{parse_time, sdk_config};

async fn queue(client: &Client) -> String {
    let name = format!(
        "ingest-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    client
        .create_queue()
        .queue_name(name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "180",
        )
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("a queue URL")
        .to_owned()
}

/// Sends `body` to the queue and receives it, as an EventBridge rule and
/// Lambda's poller would.
async fn through(client: &Client, url: &str, body: &str) -> Message {
    client
        .send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .expect("send");
    let got = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(1)
        .send()
        .await
        .expect("receive");
    let m = &got.messages()[0];
    Message {
        id: m.message_id().unwrap().to_owned(),
        receipt_handle: m.receipt_handle().unwrap().to_owned(),
        body: m.body().unwrap().to_owned(),
    }
}

fn id(n: usize) -> String {
    format!("5e000000-0000-4000-8000-{n:012}")
}

#[tokio::test]
async fn only_messages_received_from_the_ingest_queue_are_ingested() {
    let client = Client::new(&sdk_config().await);
    let (ours, other) = (queue(&client).await, queue(&client).await);
    let t0 = parse_time("2026-11-24T01:00:00Z");
    // Twelve real messages (more than one confirmation request holds)…
    let mut batch = Vec::new();
    for n in 0..12 {
        batch.push(through(&client, &ours, &api_call(&id(n), &t0)).await);
    }
    // …and the attacks: a made-up receipt handle, an empty one, and a
    // real handle of another queue, each with an AWS API call as its body.
    let forged = |n: usize, handle: &str| Message {
        id: format!("forged-{n}"),
        receipt_handle: handle.to_owned(),
        body: api_call(&id(100 + n), &t0),
    };
    batch.push(forged(0, "AQEBZm9yZ2VkIGhhbmRsZQ=="));
    batch.push(forged(1, ""));
    let foreign = through(&client, &other, &api_call(&id(102), &t0)).await;
    batch.push(forged(2, &foreign.receipt_handle));
    // … and one made up with a real message's ID.
    batch.push(Message {
        id: batch[0].id.clone(),
        ..forged(3, "AQEBc2FtZSBpZA==")
    });

    let receipts = SqsReceipts::new(client.clone(), &ours, 180);
    let answers = receipts.confirm(&batch).await.unwrap();
    let mut expected = vec![Receipt::Confirmed; 12];
    expected.extend([Receipt::Unknown; 4]);
    assert_eq!(answers, expected);

    // Through the use case: the real ones are stored and staged, no
    // forged one is, and none of them is handed back for a retry.
    let fakes = IngestFakes::default();
    let ctx = Context {
        account_id: ACCOUNT.into(),
    };
    let now = parse_time("2026-11-24T01:00:05Z");
    let report = ingest_batch(&receipts, &fakes.targets(), &ctx, &batch, &now)
        .await
        .unwrap();
    assert_eq!(
        report.forged,
        ["forged-0", "forged-1", "forged-2", batch[0].id.as_str()]
    );
    assert_eq!(report.ingested.len(), 12);
    assert!(report.retry_ids().is_empty());
    let mut staged = fakes.staging.staged_ids("audit", "eu-west-1");
    staged.sort();
    assert_eq!(staged, (0..12).map(id).collect::<Vec<_>>());
}
