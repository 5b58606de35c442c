//! What reading a group at one instant costs in requests, against the sandbox: paths whose
//! mistakes would deliver the same referrals and only ask more.

use std::time::Duration;

use referrals_client::sync::SyncOptions;
use referrals_sandbox::Config;

/// A group of every referral at one `updatedDateTime` (a migration), none of which share a
/// creation instant, is read by creation alone: a page a request, each page overlapping the
/// last by the referral at its last creation instant, and no pass through a tie, not even at
/// its last page, which holds one creation instant.
#[tokio::test]
async fn a_group_without_ties_is_read_by_creation_alone() {
    const GROUP: usize = 200;
    const PAGE: usize = 10;
    let sandbox = referrals_testkit::start(Config {
        seed_count: GROUP,
        page_size: PAGE,
        migrated: true,
        ..referrals_testkit::config()
    })
    .await;
    let client = referrals_testkit::client(&sandbox.url());
    let before = sandbox.listings();
    let mut run = client
        .sync(None, SyncOptions::new().skew(Duration::ZERO))
        .unwrap();
    let mut delivered = 0;
    while let Some(mut batch) = run.next().await.unwrap() {
        delivered += batch.take_items().len();
        batch.commit();
    }
    let requests = sandbox.listings() - before;
    assert_eq!(
        delivered,
        GROUP + 2,
        "the group and the sandbox's two examples, once"
    );
    // The group's pages, and up to four requests of the watermark's pages around it: the
    // examples, the page that finds the group, the end.
    let bound = u64::try_from(GROUP.div_ceil(PAGE - 1) + 4).unwrap();
    assert!(requests <= bound, "{requests} requests, at most {bound}");
}
