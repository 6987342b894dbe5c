//! Finding the job of a lost create: `decision::on_listing` arm by arm, the page-by-page
//! `decision::ListingGather`, and the edges of `correlation::recover` and `display_name`.

use modelstudio_core::correlation::{display_name, token, DISPLAY_NAME_LIMIT, TOKEN_LEN};
use modelstudio_core::import::decision::{
    on_listing, Listing, ListingGather, Outcome, RecoveryStep, MAX_RECOVERY_PAGES, PAGE_SIZE,
};
use modelstudio_core::import::jobs::{Job, JobPage, JobState, ListQuery, Storage};
use modelstudio_core::import::reason::{Code, Reason, Unconfirmed};
use modelstudio_core::import::recovery::{agrees, carries_token, recover, Expected, Recovery};
use modelstudio_core::requeue::Requeue;
use std::time::Duration;

const UID: &str = "6b8a4c1e-0000-4000-8000-000000000001";
const GRACE: Duration = Duration::from_secs(120);

fn ours() -> String {
    display_name("my-lora", UID)
}

fn storage(object_key: &str) -> Storage {
    Storage {
        bucket_name: "bucket".into(),
        object_key: object_key.into(),
    }
}

fn expected() -> Expected {
    Expected {
        display_name: ours(),
        base_model: "qwen3-32b".into(),
        storage: storage("models/lora/"),
    }
}

/// A RUNNING job with the given display name, storage and generated model name.
fn job_with(id: &str, display: Option<&str>, object_key: Option<&str>, model: Option<&str>) -> Job {
    Job {
        id: id.into(),
        model_name: model.map(Into::into),
        display_name: display.map(Into::into),
        storage: object_key.map(storage),
        state: JobState::Running,
        status_text: "RUNNING".into(),
        created_at: Some("2025-06-15T12:00:00.000+00:00".into()),
        error_code: None,
    }
}

/// A job that carries our token and agrees with everything expected.
fn holder(id: &str) -> Job {
    job_with(
        id,
        Some(&ours()),
        Some("models/lora/"),
        Some("qwen3-32b-offline-20250615-ab12"),
    )
}

/// A job that carries our token but was made from other files.
fn disagreeing_holder(id: &str) -> Job {
    job_with(
        id,
        Some(&ours()),
        Some("elsewhere/"),
        Some("qwen3-32b-offline-20250615-zz99"),
    )
}

/// Somebody else's job.
fn stranger(id: &str) -> Job {
    job_with(
        id,
        Some("other-model-abcdefgh"),
        Some("models/lora/"),
        Some("qwen3-32b-offline-20250615-cd34"),
    )
}

fn listing(jobs: Vec<Job>, complete: bool) -> Listing {
    Listing { jobs, complete }
}

fn not_listed_yet() -> RecoveryStep {
    RecoveryStep::Wait(Outcome {
        reason: Reason::CreateUnconfirmed(Unconfirmed::NotListedYet {
            display_name: ours(),
            grace: GRACE,
        }),
        requeue: Requeue::Backoff { min: None },
    })
}

fn decide(l: &Listing, chosen: Option<&str>, deleting: bool, grace_passed: bool) -> RecoveryStep {
    on_listing(l, &expected(), chosen, deleting, grace_passed, GRACE)
}

// ---------------------------------------------------------------------------------------------
// on_listing
// ---------------------------------------------------------------------------------------------

#[test]
fn a_chosen_job_among_several_holders_is_mirrored_as_adopted() {
    let a = holder("job-a");
    let b = holder("job-b");
    let l = listing(vec![stranger("job-x"), a.clone(), b.clone()], true);
    assert_eq!(
        decide(&l, Some("job-b"), false, true),
        RecoveryStep::Mirror {
            job: Box::new(b.clone()),
            adopted: true
        }
    );
    assert_eq!(
        decide(&l, Some("job-a"), false, true),
        RecoveryStep::Mirror {
            job: Box::new(a.clone()),
            adopted: true
        }
    );
    // Also while deleting, before the grace period and on a partial listing: the person chose.
    assert_eq!(
        decide(
            &listing(vec![a, b.clone()], false),
            Some("job-b"),
            true,
            false
        ),
        RecoveryStep::Mirror {
            job: Box::new(b),
            adopted: true
        }
    );
}

#[test]
fn a_chosen_job_that_is_not_a_holder_leaves_it_ambiguous() {
    let l = listing(
        vec![holder("job-a"), stranger("job-x"), holder("job-b")],
        true,
    );
    let ambiguous = |requeue| {
        RecoveryStep::Ambiguous(Outcome {
            reason: Reason::CreateAmbiguous {
                display_name: ours(),
                job_ids: vec!["job-a".into(), "job-b".into()],
            },
            requeue,
        })
    };
    // Not in the listing at all.
    assert_eq!(
        decide(&l, Some("job-missing"), false, true),
        ambiguous(Requeue::Never)
    );
    // Listed, but without this resource's token.
    assert_eq!(
        decide(&l, Some("job-x"), false, true),
        ambiguous(Requeue::Never)
    );
    assert_eq!(
        decide(&l, Some("job-x"), true, true),
        ambiguous(Requeue::Poll)
    );
}

#[test]
fn exactly_one_holder_is_mirrored_without_adoption() {
    let a = holder("job-a");
    let found = RecoveryStep::Mirror {
        job: Box::new(a.clone()),
        adopted: false,
    };
    let l = listing(vec![stranger("job-x"), a.clone(), stranger("job-y")], true);
    assert_eq!(decide(&l, None, false, true), found);
    // The token is enough whatever the listing's state, the grace period or the deletion.
    assert_eq!(
        decide(&listing(vec![a.clone()], false), None, false, false),
        found
    );
    assert_eq!(decide(&l, None, true, false), found);
    // spec.jobId naming that same job is still a recovery, not an adoption.
    assert_eq!(decide(&l, Some("job-a"), false, true), found);
}

#[test]
fn one_agreeing_holder_among_several_is_mirrored_without_adoption() {
    let a = holder("job-a");
    let l = listing(
        vec![
            disagreeing_holder("job-z"),
            a.clone(),
            disagreeing_holder("job-w"),
        ],
        true,
    );
    assert_eq!(
        decide(&l, None, false, true),
        RecoveryStep::Mirror {
            job: Box::new(a),
            adopted: false
        }
    );
}

#[test]
fn no_holder_on_an_incomplete_listing_waits() {
    let l = listing(vec![stranger("job-x")], false);
    assert_eq!(decide(&l, None, false, true), not_listed_yet());
    // Neither spec.jobId nor a deletion turns a partial listing into proof.
    assert_eq!(decide(&l, Some("job-s"), false, true), not_listed_yet());
    assert_eq!(decide(&l, None, true, true), not_listed_yet());
    assert_eq!(
        decide(&listing(vec![], false), None, false, true),
        not_listed_yet()
    );
}

#[test]
fn no_holder_before_the_grace_period_waits() {
    let l = listing(vec![stranger("job-x")], true);
    assert_eq!(decide(&l, None, false, false), not_listed_yet());
    assert_eq!(decide(&l, Some("job-s"), false, false), not_listed_yet());
    assert_eq!(decide(&l, None, true, false), not_listed_yet());
    match decide(&l, None, false, false) {
        RecoveryStep::Wait(o) => {
            assert_eq!(o.reason.code(), Code::CreateUnconfirmed);
            assert!(
                o.reason.message().contains(&ours()),
                "{}",
                o.reason.message()
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_holder_with_a_chosen_job_forgets_the_create() {
    let l = listing(vec![stranger("job-x")], true);
    assert_eq!(
        decide(&l, Some("job-s"), false, true),
        RecoveryStep::ForgetCreate
    );
    // spec.jobId comes first: the chosen job is deleted next, not leaked by a release.
    assert_eq!(
        decide(&l, Some("job-s"), true, true),
        RecoveryStep::ForgetCreate
    );
    // The chosen job being listed without the token changes nothing.
    assert_eq!(
        decide(&l, Some("job-x"), false, true),
        RecoveryStep::ForgetCreate
    );
}

#[test]
fn no_holder_while_deleting_releases() {
    let l = listing(vec![stranger("job-x")], true);
    assert_eq!(decide(&l, None, true, true), RecoveryStep::Release);
    assert_eq!(
        decide(&listing(vec![], true), None, true, true),
        RecoveryStep::Release
    );
}

#[test]
fn no_holder_creates() {
    assert_eq!(
        decide(&listing(vec![], true), None, false, true),
        RecoveryStep::Create
    );
    // A job whose display name only starts like ours is not ours.
    let mut prefix = stranger("job-p");
    prefix.display_name = Some(format!("{}x", ours()));
    let mut no_name = stranger("job-n");
    no_name.display_name = None;
    assert_eq!(
        decide(&listing(vec![prefix, no_name], true), None, false, true),
        RecoveryStep::Create
    );
}

#[test]
fn several_holders_are_ambiguous_never_requeued_unless_deleting() {
    let l = listing(
        vec![
            holder("job-a"),
            stranger("job-x"),
            holder("job-b"),
            holder("job-c"),
        ],
        true,
    );
    let expect = |requeue| {
        RecoveryStep::Ambiguous(Outcome {
            reason: Reason::CreateAmbiguous {
                display_name: ours(),
                job_ids: vec!["job-a".into(), "job-b".into(), "job-c".into()],
            },
            requeue,
        })
    };
    assert_eq!(decide(&l, None, false, true), expect(Requeue::Never));
    assert_eq!(decide(&l, None, true, true), expect(Requeue::Poll));
    // Ambiguity does not wait for the listing to complete or the grace period to pass.
    let partial = Listing {
        complete: false,
        ..l.clone()
    };
    assert_eq!(decide(&partial, None, false, false), expect(Requeue::Never));
    match decide(&l, None, false, true) {
        RecoveryStep::Ambiguous(o) => {
            assert_eq!(o.reason.code(), Code::CreateAmbiguous);
            assert!(o.reason.waits_for_spec_change());
            let message = o.reason.message();
            assert!(message.starts_with("3 import jobs carry"), "{message}");
            assert!(message.contains("job-a, job-b, job-c"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_same_holder_listed_twice_is_one_job() {
    let a = holder("job-a");
    let l = listing(vec![a.clone(), stranger("job-x"), a.clone()], true);
    assert_eq!(
        decide(&l, None, false, true),
        RecoveryStep::Mirror {
            job: Box::new(a),
            adopted: false
        }
    );
}

// ---------------------------------------------------------------------------------------------
// ListingGather
// ---------------------------------------------------------------------------------------------

/// Page `page_no` of a listing of `total` jobs, holding `count` jobs.
fn page(page_no: u32, total: u64, count: usize) -> JobPage {
    JobPage {
        total,
        page_no,
        page_size: PAGE_SIZE,
        items: (0..count)
            .map(|i| stranger(&format!("job-{page_no}-{i}")))
            .collect(),
    }
}

fn query(page_no: u32) -> Option<ListQuery> {
    Some(ListQuery {
        page_no: Some(page_no),
        page_size: Some(100),
        state: None,
        model_name: None,
        poll: false,
    })
}

#[test]
fn the_gather_asks_for_pages_in_order_at_the_largest_size() {
    assert_eq!(PAGE_SIZE, 100);
    let mut g = ListingGather::default();
    assert_eq!(g.next_query(), query(1));
    g.add(page(1, 250, 100));
    assert_eq!(g.next_query(), query(2));
    g.add(page(2, 250, 100));
    assert_eq!(g.next_query(), query(3));
    g.add(page(3, 250, 50));
    assert_eq!(g.next_query(), None);
    let l = g.finish();
    assert!(l.complete);
    assert_eq!(l.jobs.len(), 250);
    assert_eq!(l.jobs[0].id, "job-1-0");
    assert_eq!(l.jobs[100].id, "job-2-0");
    assert_eq!(l.jobs[249].id, "job-3-49");
}

#[test]
fn the_gather_is_complete_when_a_page_has_no_more() {
    // One page holds everything.
    let mut g = ListingGather::default();
    g.add(page(1, 7, 7));
    assert_eq!(g.next_query(), None);
    assert_eq!(
        g.finish(),
        Listing {
            jobs: page(1, 7, 7).items,
            complete: true
        }
    );
    // An exact multiple of the page size stops on the last full page.
    let mut g = ListingGather::default();
    g.add(page(1, 200, 100));
    assert_eq!(g.next_query(), query(2));
    g.add(page(2, 200, 100));
    assert_eq!(g.next_query(), None);
    let l = g.finish();
    assert!(l.complete);
    assert_eq!(l.jobs.len(), 200);
    // A workspace without jobs.
    let mut g = ListingGather::default();
    g.add(page(1, 0, 0));
    assert_eq!(g.next_query(), None);
    assert_eq!(
        g.finish(),
        Listing {
            jobs: vec![],
            complete: true
        }
    );
}

#[test]
fn the_gather_stops_incomplete_when_the_total_moves() {
    let mut g = ListingGather::default();
    g.add(page(1, 250, 100));
    g.add(page(2, 251, 100));
    assert_eq!(g.next_query(), None);
    let l = g.finish();
    assert!(!l.complete);
    // The pages read so far are kept: a holder among them is still found.
    assert_eq!(l.jobs.len(), 200);

    // A total that shrinks counts the same.
    let mut g = ListingGather::default();
    g.add(page(1, 250, 100));
    g.add(page(2, 249, 100));
    assert_eq!(g.next_query(), None);
    assert!(!g.finish().complete);

    // Also when the moved total's page would have been the last.
    let mut g = ListingGather::default();
    g.add(page(1, 150, 100));
    g.add(page(2, 140, 40));
    assert_eq!(g.next_query(), None);
    let l = g.finish();
    assert!(!l.complete);
    assert_eq!(l.jobs.len(), 140);
}

#[test]
fn the_gather_stops_on_an_empty_page_whatever_the_total() {
    // An empty first page with a large total.
    let mut g = ListingGather::default();
    g.add(page(1, 5_000, 0));
    assert_eq!(g.next_query(), None);
    let l = g.finish();
    assert!(l.jobs.is_empty());
    // The total promises more: an empty page proves nothing, so the listing is no proof.
    assert!(!l.complete);

    // An empty page in the middle of a large total.
    let mut g = ListingGather::default();
    g.add(page(1, 5_000, 100));
    assert_eq!(g.next_query(), query(2));
    g.add(page(2, 5_000, 0));
    assert_eq!(g.next_query(), None);
    let l = g.finish();
    assert_eq!(l.jobs.len(), 100);
    assert!(!l.complete);
}

#[test]
fn the_gather_stops_at_a_page_size_of_zero() {
    let mut g = ListingGather::default();
    g.add(JobPage {
        total: 10,
        page_no: 1,
        page_size: 0,
        items: vec![stranger("job-x")],
    });
    assert_eq!(g.next_query(), None);
    assert_eq!(g.finish().jobs.len(), 1);
}

#[test]
fn the_gather_is_capped_at_max_recovery_pages_and_then_incomplete() {
    assert_eq!(MAX_RECOVERY_PAGES, 1000);
    let total = 10_000_000;
    let mut g = ListingGather::default();
    for n in 1..MAX_RECOVERY_PAGES {
        assert_eq!(g.next_query(), query(n));
        g.add(page(n, total, 1));
    }
    // The last page allowed is still asked for.
    assert_eq!(g.next_query(), query(MAX_RECOVERY_PAGES));
    g.add(page(MAX_RECOVERY_PAGES, total, 1));
    assert_eq!(g.next_query(), None);
    let l = g.finish();
    assert!(!l.complete, "a capped listing proves nothing");
    assert_eq!(l.jobs.len(), MAX_RECOVERY_PAGES as usize);
}

#[test]
fn a_gathered_listing_decides_as_on_listing_does() {
    // Our job on page 2 of a steady listing.
    let mut g = ListingGather::default();
    g.add(page(1, 101, 100));
    let mut second = page(2, 101, 0);
    second.items.push(holder("job-ours"));
    g.add(second);
    assert_eq!(g.next_query(), None);
    let l = g.finish();
    assert!(l.complete);
    assert_eq!(
        decide(&l, None, false, true),
        RecoveryStep::Mirror {
            job: Box::new(holder("job-ours")),
            adopted: false
        }
    );
    // Not found on a listing whose total moved: wait rather than create a duplicate.
    let mut g = ListingGather::default();
    g.add(page(1, 101, 100));
    g.add(page(2, 102, 2));
    assert_eq!(decide(&g.finish(), None, false, true), not_listed_yet());
}

// ---------------------------------------------------------------------------------------------
// correlation
// ---------------------------------------------------------------------------------------------

#[test]
fn the_token_is_matched_exactly_up_to_surrounding_whitespace() {
    let e = expected();
    let padded = job_with("j", Some(&format!("  {}\n", ours())), None, None);
    assert!(carries_token(&padded, &e));
    let padded_expected = Expected {
        display_name: format!(" {} ", ours()),
        ..expected()
    };
    assert!(carries_token(&holder("j"), &padded_expected));
    let upper = job_with("j", Some(&ours().to_uppercase()), None, None);
    assert!(!carries_token(&upper, &e));
    let nameless = job_with("j", None, None, None);
    assert!(!carries_token(&nameless, &e));
    let truncated = job_with("j", Some(&ours()[..ours().len() - 1]), None, None);
    assert!(!carries_token(&truncated, &e));
}

#[test]
fn a_job_without_echoed_fields_agrees() {
    let e = expected();
    assert!(agrees(&job_with("j", Some(&ours()), None, None), &e));
    assert!(agrees(
        &job_with("j", Some(&ours()), Some("models/lora/"), None),
        &e
    ));
    assert!(agrees(
        &job_with("j", Some(&ours()), None, Some("qwen3-32b-offline-x")),
        &e
    ));
    // Another directory, bucket or base model disagrees.
    assert!(!agrees(
        &job_with("j", Some(&ours()), Some("models/other/"), None),
        &e
    ));
    let mut other_bucket = holder("j");
    other_bucket.storage = Some(Storage {
        bucket_name: "other".into(),
        object_key: "models/lora/".into(),
    });
    assert!(!agrees(&other_bucket, &e));
    assert!(!agrees(
        &job_with("j", Some(&ours()), None, Some("qwen3-8b-offline-x")),
        &e
    ));
    // The base model must be followed by a dash, not merely be a prefix.
    assert!(!agrees(
        &job_with("j", Some(&ours()), None, Some("qwen3-32bx-offline-x")),
        &e
    ));
    assert!(!agrees(
        &job_with("j", Some(&ours()), None, Some("qwen3-32b")),
        &e
    ));
}

#[test]
fn holders_that_all_disagree_or_all_agree_are_ambiguous() {
    let e = expected();
    assert_eq!(
        recover(&[disagreeing_holder("a"), disagreeing_holder("b")], &e),
        Recovery::Ambiguous(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        recover(&[holder("a"), stranger("x"), holder("b")], &e),
        Recovery::Ambiguous(vec!["a".into(), "b".into()])
    );
    // Two agreeing among three holders is still ambiguous, and lists every holder.
    assert_eq!(
        recover(&[holder("a"), disagreeing_holder("b"), holder("c")], &e),
        Recovery::Ambiguous(vec!["a".into(), "b".into(), "c".into()])
    );
    // A lone disagreeing holder is ours all the same: the token decides.
    assert_eq!(
        recover(&[disagreeing_holder("b"), stranger("x")], &e),
        Recovery::Found(Box::new(disagreeing_holder("b")))
    );
    // Only strangers: nothing was created.
    assert_eq!(
        recover(&[stranger("x"), stranger("y")], &e),
        Recovery::NotCreated
    );
}

#[test]
fn a_job_seen_twice_counts_once_even_among_several() {
    let e = expected();
    assert_eq!(
        recover(&[holder("a"), holder("b"), holder("a")], &e),
        Recovery::Ambiguous(vec!["a".into(), "b".into()])
    );
    // The duplicate of the one agreeing holder does not make the tie-break ambiguous.
    assert_eq!(
        recover(&[holder("a"), disagreeing_holder("b"), holder("a")], &e),
        Recovery::Found(Box::new(holder("a")))
    );
}

#[test]
fn display_name_edges() {
    let t = token(UID);
    // Surrounding whitespace goes; the name is kept otherwise.
    assert_eq!(display_name("  my-lora \n", UID), format!("my-lora-{t}"));
    // Only dashes or spaces: the token alone.
    assert_eq!(display_name("---", UID), t);
    assert_eq!(display_name("", UID), t);
    assert_eq!(display_name("- - -", UID), t);
    // A name that exactly fills the room is kept whole.
    let room = DISPLAY_NAME_LIMIT - TOKEN_LEN - 1;
    let exact = "n".repeat(room);
    assert_eq!(display_name(&exact, UID), format!("{exact}-{t}"));
    assert_eq!(display_name(&exact, UID).len(), DISPLAY_NAME_LIMIT);
    // A cut that ends on dashes or spaces drops them rather than doubling the dash.
    let cut_on_dash = format!("{}- -tail", "n".repeat(room - 3));
    assert_eq!(
        display_name(&cut_on_dash, UID),
        format!("{}-{t}", "n".repeat(room - 3))
    );
    // Inner dashes stay.
    assert_eq!(display_name("a--b", UID), format!("a--b-{t}"));
    // The same name for another resource differs only in the token.
    let other = display_name("my-lora", "6b8a4c1e-0000-4000-8000-000000000002");
    assert_ne!(other, display_name("my-lora", UID));
    assert!(other.starts_with("my-lora-"));
    // And the token is the tail the recovery matches on.
    assert!(display_name("my-lora", UID).ends_with(&t));
    assert_eq!(token(""), token(""));
    assert_eq!(token("").len(), TOKEN_LEN);
}

mod active {
    use modelstudio_core::import::decision::{
        finished_states, ActiveJobs, FinishedSearch, Lookup, ACTIVE_STATES, PAGE_SIZE,
    };
    use modelstudio_core::import::jobs::{Job, JobPage, JobState, ListQuery};

    fn job(id: &str, state: JobState) -> Job {
        Job {
            id: id.into(),
            model_name: None,
            display_name: None,
            storage: None,
            status_text: format!("{state:?}").to_uppercase(),
            state,
            created_at: None,
            error_code: None,
        }
    }

    fn page(page_no: u32, total: u64, jobs: Vec<Job>) -> JobPage {
        JobPage {
            total,
            page_no,
            page_size: PAGE_SIZE,
            items: jobs,
        }
    }

    #[test]
    fn pending_then_running_each_to_its_end() {
        let mut a = ActiveJobs::default();
        let q = a.next_query().unwrap();
        assert_eq!((q.page_no, q.state), (Some(1), Some(JobState::Pending)));
        assert_eq!(q.page_size, Some(100));
        // 150 pending: two pages.
        a.add(page(
            1,
            150,
            (0..100)
                .map(|i| job(&format!("p{i}"), JobState::Pending))
                .collect(),
        ));
        assert_eq!(a.next_query().unwrap().page_no, Some(2));
        a.add(page(
            2,
            150,
            (100..150)
                .map(|i| job(&format!("p{i}"), JobState::Pending))
                .collect(),
        ));
        let q = a.next_query().unwrap();
        assert_eq!((q.page_no, q.state), (Some(1), Some(JobState::Running)));
        // p7 started running between the two listings: the later state wins.
        a.add(page(1, 1, vec![job("p7", JobState::Running)]));
        assert_eq!(a.next_query(), None);
        assert!(a.complete() && a.proves_absence());
        assert_eq!(a.len(), 150);
        match a.lookup("p7") {
            Lookup::Listed(job) => assert_eq!(job.state, JobState::Running),
            other => panic!("{other:?}"),
        }
        assert_eq!(a.lookup("gone"), Lookup::LeftActive);
        assert_eq!(ACTIVE_STATES.len(), 2);
        // News for a resource that last saw a job: a new state, or the job gone from the lists.
        assert!(a.news("p7", &JobState::Pending));
        assert!(!a.news("p7", &JobState::Running));
        assert!(!a.news("p8", &JobState::Pending));
        assert!(a.news("gone", &JobState::Running));
        assert!(a.lacks("gone") && !a.lacks("p7"));
    }

    #[test]
    fn a_listed_job_keeps_what_its_status_mirrors_and_drops_what_only_adoption_compares() {
        use modelstudio_core::import::jobs::Storage;
        let mut a = ActiveJobs::of(finished_states());
        let full = Job {
            model_name: Some("qwen3-32b-ft-1".into()),
            display_name: Some("import-1-abcdefgh".into()),
            storage: Some(Storage {
                bucket_name: "b".into(),
                object_key: "k/".into(),
            }),
            created_at: Some("2026-12-06T03:00:00Z".into()),
            error_code: Some("InvalidWeights".into()),
            ..job("f1", JobState::Failed)
        };
        a.add(page(1, 1, vec![full.clone()]));
        let expected = Job {
            display_name: None,
            storage: None,
            ..full
        };
        assert_eq!(a.lookup("f1"), Lookup::Listed(Box::new(expected)));
        assert_eq!(a.listed_state("f1"), Some(&JobState::Failed));
        assert_eq!(a.listed_state("f2"), None);
    }

    #[test]
    fn a_moving_total_pages_on_but_proves_no_absence_and_a_failure_stops() {
        let mut a = ActiveJobs::default();
        a.add(page(
            1,
            150,
            (0..100)
                .map(|i| job(&format!("p{i}"), JobState::Pending))
                .collect(),
        ));
        // A create landed while paging: the total moved.
        a.add(page(
            2,
            151,
            (100..151)
                .map(|i| job(&format!("p{i}"), JobState::Pending))
                .collect(),
        ));
        let q = a.next_query().unwrap();
        assert_eq!(q.state, Some(JobState::Running));
        a.add(page(1, 0, vec![]));
        assert_eq!(a.next_query(), None);
        assert!(a.complete() && !a.proves_absence());
        assert!(matches!(a.lookup("p150"), Lookup::Listed(_)));
        assert_eq!(a.lookup("elsewhere"), Lookup::Unknown);
        // A listing that proves no absence has no news of a job it lacks, but it lacks the job:
        // the pages may have moved past it, and its own read tells.
        assert!(!a.news("elsewhere", &JobState::Running));
        assert!(a.lacks("elsewhere") && !a.lacks("p150"));
        assert!(a.moved());
        // A second pass finds what the first passed over, and has the newer state.
        let mut second = ActiveJobs::default();
        second.add(page(
            1,
            2,
            vec![
                job("elsewhere", JobState::Pending),
                job("p3", JobState::Running),
            ],
        ));
        second.add(page(1, 0, vec![]));
        a.merge(second);
        assert!(!a.lacks("elsewhere") && a.lacks("never-seen"));
        match a.lookup("p3") {
            Lookup::Listed(job) => assert_eq!(job.state, JobState::Running),
            other => panic!("{other:?}"),
        }
        let mut failed = ActiveJobs::default();
        failed.fail();
        a.merge(failed);
        assert!(
            !a.lacks("never-seen"),
            "a failed pass makes the whole listing unsure"
        );
        let mut b = ActiveJobs::default();
        b.fail();
        assert_eq!(b.next_query(), None);
        assert!(!b.complete() && b.is_empty());
        assert_eq!(b.lookup("x"), Lookup::Unknown);
        assert!(!b.lacks("x"), "a failed listing lacks nothing for sure");
    }

    /// A service's listing of one state, newest first: page `query.page_no` of `jobs`.
    fn serve(jobs: &[Job], query: &ListQuery) -> JobPage {
        let state = query.state.as_ref().unwrap();
        let matching: Vec<&Job> = jobs.iter().filter(|j| &j.state == state).collect();
        let skip = (query.page_no.unwrap() as usize - 1) * PAGE_SIZE as usize;
        page(
            query.page_no.unwrap(),
            matching.len() as u64,
            matching
                .into_iter()
                .skip(skip)
                .take(PAGE_SIZE as usize)
                .cloned()
                .collect(),
        )
    }

    /// Runs a search to its end against `jobs`; the queries it made.
    fn search(jobs: &[Job], ids: &[String]) -> (Vec<ListQuery>, Vec<Job>, Vec<String>) {
        let mut s = FinishedSearch::new(ids.iter().cloned());
        let mut queries = Vec::new();
        // Bounded: a search ends within twice the jobs it looks for.
        for _ in 0..=2 * ids.len() {
            let Some(q) = s.next_query() else { break };
            assert!(q.poll, "a poll cycle's search takes a poll's turn");
            s.add(&q, serve(jobs, &q));
            queries.push(q);
        }
        assert_eq!(s.next_query(), None);
        assert_eq!(s.calls(), queries.len());
        let (found, missing) = s.finish();
        let mut missing: Vec<String> = missing.into_iter().collect();
        missing.sort();
        (queries, found, missing)
    }

    #[test]
    fn a_wave_that_just_finished_is_found_on_the_first_page_of_each_state() {
        // Newest first: 40 jobs that just finished (1 in 4 failed), then 950 older ones.
        let mut jobs = Vec::new();
        for i in 0..40 {
            let state = if i % 4 == 0 {
                JobState::Failed
            } else {
                JobState::Succeeded
            };
            jobs.push(job(&format!("new{i}"), state));
        }
        for i in 0..950 {
            jobs.push(job(&format!("old{i}"), JobState::Succeeded));
        }
        let mut ids: Vec<String> = (0..40).map(|i| format!("new{i}")).collect();
        // One was deleted out of band: no listing shows it.
        ids.push("deleted".into());
        let (queries, found, missing) = search(&jobs, &ids);
        // SUCCESSED, SUCCEEDED (empty) and FAILED, one page each: not the 10 pages of
        // SUCCESSED, nor 41 GETs.
        assert_eq!(queries.len(), 3);
        let states: Vec<_> = queries.iter().map(|q| q.state.clone().unwrap()).collect();
        assert_eq!(states, finished_states());
        assert_eq!(found.len(), 40);
        assert!(found.iter().all(|j| j.id.starts_with("new")));
        assert_eq!(
            found.iter().filter(|j| j.state == JobState::Failed).count(),
            10
        );
        assert_eq!(missing, vec!["deleted".to_string()]);
    }

    #[test]
    fn pages_go_round_the_states_and_stop_at_the_cost_of_reading_the_rest() {
        // Oldest first (the order is not documented): the 5 jobs sought are on the last page
        // of 1,000 successes. After 5 calls, reading them alone is cheaper than paging on.
        let mut jobs: Vec<Job> = (0..995)
            .map(|i| job(&format!("old{i}"), JobState::Succeeded))
            .collect();
        let ids: Vec<String> = (0..5).map(|i| format!("new{i}")).collect();
        jobs.extend(ids.iter().map(|id| job(id, JobState::Succeeded)));
        let (queries, found, missing) = search(&jobs, &ids);
        assert_eq!(queries.len(), 5);
        // Round one: a page of each state; SUCCEEDED and FAILED end there, SUCCESSED goes on.
        let pages: Vec<_> = queries
            .iter()
            .map(|q| (q.state.clone().unwrap(), q.page_no.unwrap()))
            .collect();
        let [ok, alt, failed] = <[JobState; 3]>::try_from(finished_states()).unwrap();
        assert_eq!(
            pages,
            vec![
                (ok.clone(), 1),
                (alt, 1),
                (failed, 1),
                (ok.clone(), 2),
                (ok, 3)
            ]
        );
        assert!(found.is_empty());
        assert_eq!(missing, ids);
    }

    #[test]
    fn a_few_jobs_are_not_worth_a_search_and_an_empty_one_asks_nothing() {
        let ids: Vec<String> = (0..3).map(|i| format!("j{i}")).collect();
        assert!(!FinishedSearch::new(ids).worth_it());
        assert!(FinishedSearch::new((0..4).map(|i| format!("j{i}"))).worth_it());
        let empty = FinishedSearch::new(Vec::<String>::new());
        assert_eq!(empty.next_query(), None);
    }
}
