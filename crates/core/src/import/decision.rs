//! What to do next, and what a remote answer means for a ModelImport: pure functions over plain
//! data. The step machine (`step`) puts them together into one step.

use super::jobs::{Job, JobPage, JobState, ListQuery};
use super::reason::{Reason, Unconfirmed};
use super::recovery::{self, Expected, Recovery};
use super::resource::Phase;
use crate::api::{ApiError, RemoteFailure};
use crate::credentials::CredentialProblem;
use crate::deletion::DeletionPolicy;
use crate::requeue::Requeue;
use std::time::Duration;

/// What the decision of the next step reads of a resource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub generation: Option<i64>,
    pub deleting: bool,
    pub has_finalizer: bool,
    pub deletion_policy: DeletionPolicy,
    pub spec_job_id: Option<String>,
    pub status_job_id: Option<String>,
    /// The generation at which the resource stalled waiting for a spec change, if it did.
    pub stalled_generation: Option<i64>,
    /// A create was attempted and its job is not recorded: it may exist.
    pub create_attempted: bool,
    /// `modelstudio.io/paused` is set: no call to Model Studio.
    pub paused: bool,
    /// `managementPolicy: Observe`: the job is mirrored, never created or deleted.
    pub observe: bool,
}

/// The next step for a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassPlan {
    /// Put the finalizer on before anything remote exists.
    AddFinalizer,
    /// Create the remote job.
    Create,
    /// A create may have taken effect without its job being recorded: look for the job first.
    Recover,
    /// Check that `spec.jobId` exists and take it over.
    Adopt { job_id: String },
    /// Read the job and mirror it.
    Poll { job_id: String },
    /// The spec names another job than the one this resource already tracks.
    JobIdConflict { spec: String, status: String },
    /// Stalled on this generation: nothing happens until the spec changes.
    WaitForSpecChange,
    /// Delete the remote job, then release the resource.
    Delete { job_id: String },
    /// Release the resource without a remote call.
    Release { reason: ReleaseReason },
    /// Being deleted without our finalizer: not ours to act on.
    Nothing,
    /// Paused by its annotation: no call to Model Studio; the conditions say so.
    Paused,
    /// Observed without a job to observe: stalled until the spec names one.
    ObservedWithoutJobId,
}

impl PassPlan {
    /// A static name, for metric labels.
    pub fn name(&self) -> &'static str {
        match self {
            PassPlan::AddFinalizer => "add_finalizer",
            PassPlan::Create => "create",
            PassPlan::Recover => "recover",
            PassPlan::Adopt { .. } => "adopt",
            PassPlan::Poll { .. } => "poll",
            PassPlan::JobIdConflict { .. } => "job_id_conflict",
            PassPlan::WaitForSpecChange => "wait_for_spec_change",
            PassPlan::Delete { .. } => "delete",
            PassPlan::Release { .. } => "release",
            PassPlan::Nothing => "nothing",
            PassPlan::Paused => "paused",
            PassPlan::ObservedWithoutJobId => "observed_without_job_id",
        }
    }

    /// Steps that must never act on a cached copy older than our own last write: a job recorded
    /// a moment ago may not be in the cache yet, and creating, listing everything or letting go
    /// on that copy would duplicate or leak it.
    pub fn wants_fresh_copy(&self) -> bool {
        matches!(
            self,
            PassPlan::Create | PassPlan::Recover | PassPlan::Release { .. }
        )
    }

    /// Steps that call Model Studio, and so need an API key.
    pub fn calls_remote(&self) -> bool {
        matches!(
            self,
            PassPlan::Create
                | PassPlan::Recover
                | PassPlan::Adopt { .. }
                | PassPlan::Poll { .. }
                | PassPlan::Delete { .. }
        )
    }
}

/// Why the finalizer goes without a DELETE call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseReason {
    /// `deletionPolicy: Orphan`.
    Orphan,
    /// No remote job was ever created or adopted.
    NeverCreated,
    /// `modelstudio.io/paused` is set: whatever exists in Model Studio stays.
    Paused,
    /// `managementPolicy: Observe`: the job was never the controller's to delete.
    Observed,
}

/// Decides the next step.
pub fn plan(s: &Snapshot) -> PassPlan {
    let job_id = s.status_job_id.clone().or_else(|| s.spec_job_id.clone());
    if s.deleting {
        if !s.has_finalizer {
            return PassPlan::Nothing;
        }
        // A paused resource never blocks its deletion: it lets its job go, uncalled.
        if s.paused {
            return PassPlan::Release {
                reason: ReleaseReason::Paused,
            };
        }
        // An observed job is let go, never deleted.
        if s.observe {
            return PassPlan::Release {
                reason: ReleaseReason::Observed,
            };
        }
        // A create may have made a job that is not recorded: find it before deleting or letting go.
        if s.deletion_policy == DeletionPolicy::Delete
            && s.create_attempted
            && s.status_job_id.is_none()
        {
            return PassPlan::Recover;
        }
        return match (s.deletion_policy, job_id) {
            (DeletionPolicy::Orphan, _) => PassPlan::Release {
                reason: ReleaseReason::Orphan,
            },
            (DeletionPolicy::Delete, None) => PassPlan::Release {
                reason: ReleaseReason::NeverCreated,
            },
            (DeletionPolicy::Delete, Some(job_id)) => PassPlan::Delete { job_id },
        };
    }
    if !s.has_finalizer {
        return PassPlan::AddFinalizer;
    }
    if s.paused {
        return PassPlan::Paused;
    }
    if s.stalled_generation.is_some() && s.stalled_generation == s.generation {
        return PassPlan::WaitForSpecChange;
    }
    match (&s.spec_job_id, &s.status_job_id) {
        (Some(spec), Some(status)) if spec != status => PassPlan::JobIdConflict {
            spec: spec.clone(),
            status: status.clone(),
        },
        (_, Some(status)) => PassPlan::Poll {
            job_id: status.clone(),
        },
        // Observed: the job spec.jobId names is taken over; none is ever created.
        (Some(spec), None) if s.observe => PassPlan::Adopt {
            job_id: spec.clone(),
        },
        (None, None) if s.observe => PassPlan::ObservedWithoutJobId,
        // A create may have made a job: find it before taking another one over.
        (Some(_), None) if s.create_attempted => PassPlan::Recover,
        (Some(spec), None) => PassPlan::Adopt {
            job_id: spec.clone(),
        },
        (None, None) if s.create_attempted => PassPlan::Recover,
        (None, None) => PassPlan::Create,
    }
}

/// The mirrored view of a remote job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub job_id: String,
    pub model_name: Option<String>,
    pub remote_status: String,
    pub phase: Phase,
    pub error_code: Option<String>,
    pub created_at: Option<String>,
    pub reason: Reason,
    pub requeue: Requeue,
}

/// What a job read from the API means for the resource.
pub fn observe_job(job: &Job) -> JobView {
    let job_id = job.id.clone();
    let (phase, reason, requeue) = match &job.state {
        JobState::Pending => (Phase::Pending, Reason::JobPending { job_id }, Requeue::Poll),
        JobState::Running => (Phase::Running, Reason::JobRunning { job_id }, Requeue::Poll),
        JobState::Succeeded => (
            Phase::Succeeded,
            Reason::JobSucceeded {
                job_id,
                model_name: job.model_name.clone(),
            },
            Requeue::Resync,
        ),
        JobState::Failed => (
            Phase::Failed,
            Reason::JobFailed {
                job_id,
                error_code: job.error_code.clone(),
            },
            Requeue::Resync,
        ),
        JobState::Unknown(s) => (
            Phase::Running,
            Reason::UnknownJobStatus {
                job_id,
                status: s.clone(),
            },
            Requeue::Poll,
        ),
    };
    JobView {
        job_id: job.id.clone(),
        model_name: job.model_name.clone(),
        remote_status: job.status_text.clone(),
        phase,
        error_code: job
            .error_code
            .clone()
            .filter(|_| job.state == JobState::Failed),
        created_at: job.created_at.clone(),
        reason,
        requeue,
    }
}

/// Which remote call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Create,
    /// Listing jobs to find the job of a lost create.
    Recover,
    Adopt,
    Poll,
    Delete,
}

/// What a failed call (or a missing input) means for the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub reason: Reason,
    pub requeue: Requeue,
}

/// Decides on a failed call by its error class.
pub fn on_api_error(op: Call, err: &ApiError) -> Outcome {
    let error = err.to_string();
    let stalled = |reason| Outcome {
        reason,
        requeue: Requeue::Never,
    };
    let retry = |reason| Outcome {
        reason,
        requeue: Requeue::Backoff {
            min: err.retry_after(),
        },
    };
    match (op, err) {
        (Call::Create, ApiError::InvalidParameter(r)) => stalled(Reason::InvalidParameter {
            error: r.to_string(),
        }),
        (Call::Create, ApiError::NotFound(r)) => stalled(Reason::BaseModelNotFound {
            error: r.to_string(),
        }),
        (Call::Adopt | Call::Poll, ApiError::NotFound(r)) => stalled(Reason::JobNotFound {
            error: r.to_string(),
        }),
        (Call::Delete, ApiError::OperationDenied(r)) => Outcome {
            reason: Reason::DeletionBlocked {
                error: r.message.clone(),
            },
            requeue: Requeue::Poll,
        },
        // The job may exist: the next attempt looks for it before creating again.
        (Call::Create, e) if !e.create_certainly_not_applied() => {
            retry(Reason::CreateUnconfirmed(Unconfirmed::NoAnswer { error }))
        }
        // Anything else is retried; what is not expected to cure itself (RemoteError) slowly, as
        // a person may fix the account or the service may change.
        (_, e) => retry(Reason::Remote {
            failure: RemoteFailure::of(e),
            error,
        }),
    }
}

/// What a failed read of the recorded job means, given what the resource knows of it.
/// `None`: nothing to record (a finished job cannot change, so a failed look at it is no news
/// for Ready); only look again.
pub fn on_read_failure(
    op: Call,
    job_id: &str,
    err: &ApiError,
    created_recently: bool,
    finished: bool,
) -> (Option<Reason>, Requeue) {
    let mut outcome = on_api_error(op, err);
    // A job made moments ago may not be readable yet where reads lag behind writes.
    if matches!(err, ApiError::NotFound(_)) && created_recently {
        outcome = Outcome {
            reason: Reason::JobNotVisibleYet {
                job_id: job_id.to_string(),
                error: err.to_string(),
            },
            requeue: Requeue::Backoff { min: None },
        };
    }
    if finished && outcome.reason.meaning() != crate::conditions::Meaning::Stalled {
        return (None, outcome.requeue);
    }
    (Some(outcome.reason), outcome.requeue)
}

/// What a DELETE answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeletionOutcome {
    /// The job is gone: remove the finalizer.
    Released { already_gone: bool },
    /// Refused while the job runs: read the job to show its progress (and to tell a refused
    /// finished job from a running one), then retry.
    Denied { message: String },
    /// Keep the finalizer and try again.
    Retry(Outcome),
}

pub fn on_delete(result: &Result<Job, ApiError>) -> DeletionOutcome {
    match result {
        Ok(_) => DeletionOutcome::Released {
            already_gone: false,
        },
        Err(ApiError::NotFound(_)) => DeletionOutcome::Released { already_gone: true },
        Err(ApiError::OperationDenied(r)) => DeletionOutcome::Denied {
            message: r.message.clone(),
        },
        Err(e) => DeletionOutcome::Retry(on_api_error(Call::Delete, e)),
    }
}

/// What an `OperationDenied` DELETE means, given the job's status read right after it.
pub fn on_delete_denied(message: &str, job: Option<&Job>) -> Outcome {
    match job {
        // The documented refusal is for unfinished jobs; a finished one refused is something else
        // (in use by a deployment, perhaps): say so, and retry slowly.
        Some(j) if j.state.is_terminal() => Outcome {
            reason: Reason::DeletionRefused {
                job_id: j.id.clone(),
                status: j.status_text.clone(),
                // Model Studio's own words: the job is not pending or running, so the
                // DeletionBlocked wording would mislead.
                error: message.to_string(),
            },
            requeue: Requeue::Backoff { min: None },
        },
        _ => Outcome {
            reason: Reason::DeletionBlocked {
                error: message.to_string(),
            },
            requeue: Requeue::Poll,
        },
    }
}

pub fn on_credentials(problem: &CredentialProblem, deleting: bool) -> Outcome {
    Outcome {
        reason: Reason::CredentialsMissing {
            problem: problem.clone(),
            deleting,
        },
        requeue: Requeue::Backoff { min: None },
    }
}

/// What a listing of the workspace's jobs says about a create whose answer was lost.
#[derive(Debug, Clone, PartialEq)]
pub enum RecoveryStep {
    /// Mirror this job (found by its token, or chosen by a person with spec.jobId).
    Mirror { job: Box<Job>, adopted: bool },
    /// Not listed yet, and the listing cannot prove it never will be: look again.
    Wait(Outcome),
    /// The create made nothing, and spec.jobId names a job to take over (or delete) next.
    ForgetCreate,
    /// The create made nothing and the resource is going: let it go.
    Release,
    /// The create made nothing: create now.
    Create,
    /// Several jobs carry the token: a person chooses.
    Ambiguous(Outcome),
}

/// The listing as seen: its jobs, and whether it reached its end with a total that held still.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    pub jobs: Vec<Job>,
    pub complete: bool,
}

/// Pages read at most when looking for the job of a lost create (100,000 jobs).
pub const MAX_RECOVERY_PAGES: u32 = 1000;
/// The largest page the API serves.
pub const PAGE_SIZE: u32 = 100;

/// Gathers a listing of every job page by page. Without a cursor, a listing during which jobs
/// come or go may skip one: only a listing whose total held still, and that reached its end, can
/// prove that no job exists.
#[derive(Debug, Default)]
pub struct ListingGather {
    first_total: Option<u64>,
    pages: u32,
    done: bool,
    listing: Listing,
}

impl ListingGather {
    /// The query of the next page, or `None` once the listing is over.
    pub fn next_query(&self) -> Option<ListQuery> {
        (!self.done && self.pages < MAX_RECOVERY_PAGES).then(|| ListQuery {
            page_no: Some(self.pages + 1),
            page_size: Some(PAGE_SIZE),
            ..Default::default()
        })
    }

    /// Adds the page that [`Self::next_query`] asked for.
    pub fn add(&mut self, page: JobPage) {
        self.pages += 1;
        let page_total = page.total;
        let steady = *self.first_total.get_or_insert(page_total) == page_total;
        // An empty page before the end the total promises proves nothing: stop, incomplete.
        let short = page.items.is_empty() && page.has_more();
        let more = page.has_more();
        self.listing.jobs.extend(page.items);
        if !steady || short {
            self.done = true;
        } else if !more {
            self.done = true;
            // Proof needs every job the total counts (a malformed page size ends paging early).
            self.listing.complete = self.listing.jobs.len() as u64 >= page_total;
        }
    }

    pub fn finish(self) -> Listing {
        self.listing
    }
}

/// The states a job is in while it can still change: what a poll cycle lists.
pub const ACTIVE_STATES: [JobState; 2] = [JobState::Pending, JobState::Running];

/// The states a finished job is listed by at the resync: both spellings of success (the filter
/// is an exact match, and the documentation spells it both ways), and failure.
pub fn finished_states() -> Vec<JobState> {
    vec![
        JobState::Succeeded,
        JobState::Unknown("SUCCEEDED".into()),
        JobState::Failed,
    ]
}

/// The final states of jobs that just left the active states, looked for in listings of the
/// finished states: page 1 of each state, then page 2 of each, and so on, until every job is
/// found, every state is paged to its end, or the pages read cost as many calls as reading each
/// job still missing on its own would. A listing that shows the newest jobs first (the
/// simulator's order; the documentation leaves it open) has the jobs that just finished on its
/// first pages; in any other order the search stops at that cost, so it never takes more than
/// twice the calls of a read per job. A job found on a page is in that state; the rest are read
/// on their own (deleted, or passed over by pages that moved).
#[derive(Debug, Clone)]
pub struct FinishedSearch {
    missing: std::collections::HashSet<String>,
    found: Vec<Job>,
    /// Each finished state: the pages read, and whether it reached its end.
    states: Vec<(JobState, u32, bool)>,
    calls: usize,
}

impl FinishedSearch {
    pub fn new(job_ids: impl IntoIterator<Item = String>) -> Self {
        FinishedSearch {
            missing: job_ids.into_iter().collect(),
            found: Vec::new(),
            states: finished_states()
                .into_iter()
                .map(|s| (s, 0, false))
                .collect(),
            calls: 0,
        }
    }

    /// Whether a search is worth starting: one page of each finished state costs fewer calls
    /// than a read of each job.
    pub fn worth_it(&self) -> bool {
        self.missing.len() > self.states.len()
    }

    /// The next page to read (of the state with the fewest read, in order), or `None` when the
    /// search is over.
    pub fn next_query(&self) -> Option<ListQuery> {
        if self.missing.is_empty() || self.calls >= self.missing.len() {
            return None;
        }
        let (state, pages, _) = self
            .states
            .iter()
            .filter(|(_, _, ended)| !ended)
            .min_by_key(|(_, pages, _)| *pages)?;
        Some(ListQuery {
            page_no: Some(pages + 1),
            page_size: Some(PAGE_SIZE),
            state: Some(state.clone()),
            model_name: None,
            poll: true,
        })
    }

    /// Adds the page that `query` (from [`Self::next_query`]) asked for.
    pub fn add(&mut self, query: &ListQuery, page: JobPage) {
        self.calls += 1;
        let ended = page.items.is_empty() || !page.has_more();
        if let Some(entry) = self
            .states
            .iter_mut()
            .find(|(s, _, _)| Some(s) == query.state.as_ref())
        {
            entry.1 += 1;
            entry.2 |= ended;
        }
        for job in page.items {
            if self.missing.remove(&job.id) {
                self.found.push(job);
            }
        }
    }

    /// How many pages the search read.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// The jobs found, and the ids still missing.
    pub fn finish(self) -> (Vec<Job>, std::collections::HashSet<String>) {
        (self.found, self.missing)
    }
}

/// A listed job as a listing holds it, by id: what the status of the resource that tracks the
/// job mirrors, and no more. Listings hold thousands of jobs at once (every job in progress, or
/// every finished one until the next resync), so the display name and storage, which only an
/// adoption compares (and an adoption reads its job on its own), are left out.
#[derive(Debug, Clone)]
struct Listed {
    state: JobState,
    status_text: Box<str>,
    model_name: Option<Box<str>>,
    created_at: Option<Box<str>>,
    error_code: Option<Box<str>>,
}

impl Listed {
    fn of(job: Job) -> (Box<str>, Listed) {
        let listed = Listed {
            state: job.state,
            status_text: job.status_text.into(),
            model_name: job.model_name.map(Into::into),
            created_at: job.created_at.map(Into::into),
            error_code: job.error_code.map(Into::into),
        };
        (job.id.into(), listed)
    }

    fn job(&self, id: &str) -> Job {
        Job {
            id: id.to_string(),
            model_name: self.model_name.as_deref().map(Into::into),
            display_name: None,
            storage: None,
            state: self.state.clone(),
            status_text: self.status_text.to_string(),
            created_at: self.created_at.as_deref().map(Into::into),
            error_code: self.error_code.as_deref().map(Into::into),
        }
    }
}

/// A workspace's jobs in some states, gathered page by page with the status filter, one state
/// after the other: a poll cycle's view of the active jobs (the default), or a resync's of the
/// finished ones. A job a whole listing lacks has left those states (or was deleted) and is read
/// on its own, once.
#[derive(Debug, Clone)]
pub struct ActiveJobs {
    jobs: std::collections::HashMap<Box<str>, Listed>,
    states: Vec<JobState>,
    state: usize,
    page_no: u32,
    first_total: Option<u64>,
    complete: bool,
    failed: bool,
    moved: bool,
}

impl Default for ActiveJobs {
    fn default() -> Self {
        ActiveJobs::of(ACTIVE_STATES.to_vec())
    }
}

impl ActiveJobs {
    /// A listing of the jobs in `states`.
    pub fn of(states: Vec<JobState>) -> Self {
        ActiveJobs {
            jobs: Default::default(),
            states,
            state: 0,
            page_no: 0,
            first_total: None,
            complete: false,
            failed: false,
            moved: false,
        }
    }

    /// The next page to list, or `None` once every state was listed to its end.
    pub fn next_query(&self) -> Option<ListQuery> {
        if self.complete || self.failed || self.page_no >= MAX_RECOVERY_PAGES {
            return None;
        }
        let state = self.states.get(self.state)?.clone();
        Some(ListQuery {
            page_no: Some(self.page_no + 1),
            page_size: Some(PAGE_SIZE),
            state: Some(state),
            model_name: None,
            poll: false,
        })
    }

    /// Adds the page that [`Self::next_query`] asked for.
    pub fn add(&mut self, page: JobPage) {
        self.page_no += 1;
        let steady = *self.first_total.get_or_insert(page.total) == page.total;
        let more = page.has_more() && !page.items.is_empty();
        for job in page.items {
            // A job listed as PENDING then as RUNNING: the later listing is the newer.
            let (id, listed) = Listed::of(job);
            self.jobs.insert(id, listed);
        }
        if !steady {
            // Jobs came or went while paging (creates under way): a job may have been skipped,
            // so an absence proves nothing; paging goes on, since what is seen holds.
            self.moved = true;
        }
        if !more {
            self.state += 1;
            self.page_no = 0;
            self.first_total = None;
            self.complete = self.state >= self.states.len();
        }
    }

    /// A listing that failed part-way: what it saw holds, an absence proves nothing.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// How many active jobs were seen.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// What the listing says of `job_id`.
    pub fn lookup(&self, job_id: &str) -> Lookup {
        match self.jobs.get(job_id) {
            Some(listed) => Lookup::Listed(Box::new(listed.job(job_id))),
            // A whole listing without the job: it finished or went; read it on its own, once.
            None if self.proves_absence() => Lookup::LeftActive,
            None => Lookup::Unknown,
        }
    }

    /// The state a job is listed in, if it is listed.
    pub fn listed_state(&self, job_id: &str) -> Option<&JobState> {
        self.jobs.get(job_id).map(|listed| &listed.state)
    }

    /// Adds a second pass over the same states, made because jobs came and went while this one
    /// paged: together they miss only what both passed over. The later pass's states win.
    pub fn merge(&mut self, later: ActiveJobs) {
        self.jobs.extend(later.jobs);
        self.complete &= later.complete;
        self.failed |= later.failed;
        self.moved |= later.moved;
    }

    /// Whether the totals moved while paging, so that an absence proves nothing by itself.
    pub fn moved(&self) -> bool {
        self.moved
    }

    /// Whether a job must be read on its own: the listing reached the end of every state without
    /// it. Either it left the active states or, when jobs came and went while paging (creates
    /// under way shift the pages), the pages moved past it; its own read tells which. A failed
    /// or cut listing lacks nothing for sure.
    pub fn lacks(&self, job_id: &str) -> bool {
        self.complete && !self.failed && !self.jobs.contains_key(job_id)
    }

    /// Whether the listing has news of a job last seen in state `seen`: another state, or gone
    /// from the active states. An incomplete listing has none.
    pub fn news(&self, job_id: &str, seen: &JobState) -> bool {
        match self.jobs.get(job_id) {
            Some(listed) => listed.state != *seen,
            None => self.proves_absence(),
        }
    }

    /// Whether the listing reached the end of every active state.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Whether a job it lacks is certainly not active: every state listed to its end while no
    /// job came or went.
    pub fn proves_absence(&self) -> bool {
        self.complete && !self.moved && !self.failed
    }
}

/// What a poll cycle's listing says of one job.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Listed: the job as listed (without the display name and storage, see `Listed`).
    Listed(Box<Job>),
    /// Not active any more (finished, or deleted): read it on its own.
    LeftActive,
    /// The listing cannot tell (it was incomplete): no news this cycle.
    Unknown,
}

/// Decides from a listing of every job. `chosen` is spec.jobId; `grace_passed` whether the last
/// create attempt is old enough for a listing without its job to be final.
pub fn on_listing(
    listing: &Listing,
    expected: &Expected,
    chosen: Option<&str>,
    deleting: bool,
    grace_passed: bool,
    grace: Duration,
) -> RecoveryStep {
    match recovery::recover(&listing.jobs, expected) {
        // A person picked one of several with spec.jobId: take it over.
        Recovery::Ambiguous(ids) if chosen.is_some_and(|c| ids.iter().any(|i| i == c)) => {
            match listing.jobs.iter().find(|j| Some(j.id.as_str()) == chosen) {
                Some(job) => RecoveryStep::Mirror {
                    job: Box::new(job.clone()),
                    adopted: true,
                },
                None => RecoveryStep::Wait(Outcome {
                    reason: Reason::CreateUnconfirmed(Unconfirmed::NotListedYet {
                        display_name: expected.display_name.clone(),
                        grace,
                    }),
                    requeue: Requeue::Backoff { min: None },
                }),
            }
        }
        Recovery::Found(job) => RecoveryStep::Mirror {
            job,
            adopted: false,
        },
        // A slow create may not be listed yet: only a whole listing after the grace period counts.
        Recovery::NotCreated if !listing.complete || !grace_passed => RecoveryStep::Wait(Outcome {
            reason: Reason::CreateUnconfirmed(Unconfirmed::NotListedYet {
                display_name: expected.display_name.clone(),
                grace,
            }),
            requeue: Requeue::Backoff { min: None },
        }),
        Recovery::NotCreated if chosen.is_some() => RecoveryStep::ForgetCreate,
        Recovery::NotCreated if deleting => RecoveryStep::Release,
        Recovery::NotCreated => RecoveryStep::Create,
        Recovery::Ambiguous(job_ids) => RecoveryStep::Ambiguous(Outcome {
            reason: Reason::CreateAmbiguous {
                display_name: expected.display_name.clone(),
                job_ids,
            },
            // A deletion waits for the person: look again at the poll interval.
            requeue: if deleting {
                Requeue::Poll
            } else {
                Requeue::Never
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RemoteError;
    use crate::import::reason::Code;
    use std::time::Duration;

    fn snap() -> Snapshot {
        Snapshot {
            generation: Some(1),
            has_finalizer: true,
            ..Default::default()
        }
    }

    fn remote(code: &str, status: u16) -> RemoteError {
        RemoteError {
            code: code.into(),
            message: "msg".into(),
            request_id: Some("rid".into()),
            http_status: status,
        }
    }

    fn job(status: &str) -> Job {
        Job {
            id: "job-1".into(),
            model_name: Some("qwen3-32b-offline-20240101-abc1".into()),
            display_name: None,
            storage: None,
            state: JobState::parse(status),
            status_text: status.into(),
            created_at: Some("2024-01-01T12:00:00.000+00:00".into()),
            error_code: (status == "FAILED").then(|| "Failed to get files from OSS.".into()),
        }
    }

    #[test]
    fn finalizer_comes_before_anything_remote() {
        let s = Snapshot {
            has_finalizer: false,
            ..snap()
        };
        assert_eq!(plan(&s), PassPlan::AddFinalizer);
        let s = Snapshot {
            has_finalizer: false,
            spec_job_id: Some("j".into()),
            ..snap()
        };
        assert_eq!(plan(&s), PassPlan::AddFinalizer);
    }

    #[test]
    fn create_adopt_poll() {
        assert_eq!(plan(&snap()), PassPlan::Create);
        let s = Snapshot {
            spec_job_id: Some("j".into()),
            ..snap()
        };
        assert_eq!(plan(&s), PassPlan::Adopt { job_id: "j".into() });
        let s = Snapshot {
            status_job_id: Some("j".into()),
            ..snap()
        };
        assert_eq!(plan(&s), PassPlan::Poll { job_id: "j".into() });
        let s = Snapshot {
            create_attempted: true,
            ..snap()
        };
        assert_eq!(plan(&s), PassPlan::Recover);
        let s = Snapshot {
            create_attempted: true,
            status_job_id: Some("j".into()),
            ..snap()
        };
        assert_eq!(plan(&s), PassPlan::Poll { job_id: "j".into() });
        let s = Snapshot {
            spec_job_id: Some("j".into()),
            status_job_id: Some("j".into()),
            ..snap()
        };
        assert_eq!(plan(&s), PassPlan::Poll { job_id: "j".into() });
        let s = Snapshot {
            spec_job_id: Some("a".into()),
            status_job_id: Some("b".into()),
            ..snap()
        };
        assert_eq!(
            plan(&s),
            PassPlan::JobIdConflict {
                spec: "a".into(),
                status: "b".into()
            }
        );
    }

    #[test]
    fn stalled_generation_waits_for_a_new_spec() {
        let s = Snapshot {
            stalled_generation: Some(1),
            ..snap()
        };
        assert_eq!(plan(&s), PassPlan::WaitForSpecChange);
        let s = Snapshot {
            stalled_generation: Some(1),
            generation: Some(2),
            ..snap()
        };
        assert_eq!(plan(&s), PassPlan::Create);
    }

    #[test]
    fn deletion_with_both_policies_with_and_without_a_job() {
        let deleting = |policy, status_job: Option<&str>, spec_job: Option<&str>| Snapshot {
            deleting: true,
            deletion_policy: policy,
            status_job_id: status_job.map(Into::into),
            spec_job_id: spec_job.map(Into::into),
            ..snap()
        };
        use DeletionPolicy::*;
        assert_eq!(
            plan(&deleting(Delete, Some("j"), None)),
            PassPlan::Delete { job_id: "j".into() }
        );
        assert_eq!(
            plan(&deleting(Delete, None, Some("s"))),
            PassPlan::Delete { job_id: "s".into() }
        );
        assert_eq!(
            plan(&deleting(Delete, None, None)),
            PassPlan::Release {
                reason: ReleaseReason::NeverCreated
            }
        );
        assert_eq!(
            plan(&deleting(Orphan, Some("j"), None)),
            PassPlan::Release {
                reason: ReleaseReason::Orphan
            }
        );
        assert_eq!(
            plan(&deleting(Orphan, None, None)),
            PassPlan::Release {
                reason: ReleaseReason::Orphan
            }
        );
        let mut s = deleting(Delete, None, None);
        s.create_attempted = true;
        assert_eq!(plan(&s), PassPlan::Recover);
        // Also with spec.jobId: the unrecorded create's job is found first, not leaked.
        let mut with_spec = deleting(Delete, None, Some("s"));
        with_spec.create_attempted = true;
        assert_eq!(plan(&with_spec), PassPlan::Recover);
        s.deletion_policy = Orphan;
        assert_eq!(
            plan(&s),
            PassPlan::Release {
                reason: ReleaseReason::Orphan
            }
        );
        let mut s = deleting(Delete, Some("j"), None);
        s.has_finalizer = false;
        assert_eq!(plan(&s), PassPlan::Nothing);
        // A stall never blocks deletion.
        let mut s = deleting(Delete, Some("j"), None);
        s.stalled_generation = s.generation;
        assert_eq!(plan(&s), PassPlan::Delete { job_id: "j".into() });
    }

    #[test]
    fn every_remote_status() {
        let v = observe_job(&job("PENDING"));
        assert_eq!((v.phase, v.requeue), (Phase::Pending, Requeue::Poll));
        assert!(v.reason.code() == Code::JobPending);
        let v = observe_job(&job("RUNNING"));
        assert_eq!((v.phase, v.requeue), (Phase::Running, Requeue::Poll));
        for spelling in ["SUCCESSED", "SUCCEEDED"] {
            let v = observe_job(&job(spelling));
            assert_eq!((v.phase, v.requeue), (Phase::Succeeded, Requeue::Resync));
            assert_eq!(v.reason.meaning(), crate::conditions::Meaning::Ready);
            assert_eq!(v.remote_status, spelling);
        }
        let v = observe_job(&job("FAILED"));
        assert_eq!(v.phase, Phase::Failed);
        assert!(v.reason.code() == Code::JobFailed);
        assert!(v.reason.message().contains("Failed to get files from OSS."));
        assert_eq!(
            v.error_code.as_deref(),
            Some("Failed to get files from OSS.")
        );
        assert!(!v.reason.waits_for_spec_change());
        let v = observe_job(&job("PAUSED"));
        assert_eq!((v.phase, v.requeue), (Phase::Running, Requeue::Poll));
        assert!(v.reason.message().contains("PAUSED"));
    }

    #[test]
    fn every_error_code_on_create() {
        let o = on_api_error(
            Call::Create,
            &ApiError::InvalidParameter(remote("InvalidParameter", 400)),
        );
        assert_eq!(o.requeue, Requeue::Never);
        assert!(o.reason.waits_for_spec_change());
        assert!(o.reason.message().contains("msg"));
        let o = on_api_error(Call::Create, &ApiError::NotFound(remote("NotFound", 404)));
        assert_eq!(o.reason.code().as_str(), "BaseModelNotFound");
        assert!(o.reason.waits_for_spec_change());
        let o = on_api_error(
            Call::Create,
            &ApiError::InvalidApiKey(remote("InvalidApiKey", 401)),
        );
        assert_eq!(o.reason.code().as_str(), "InvalidApiKey");
        assert_eq!(o.requeue, Requeue::Backoff { min: None });
        let o = on_api_error(
            Call::Create,
            &ApiError::AccessDenied(remote("AccessDenied", 403)),
        );
        assert_eq!(o.reason.code().as_str(), "AccessDenied");
        let o = on_api_error(
            Call::Create,
            &ApiError::Throttled {
                remote: remote("Throttling.RateQuota", 429),
                retry_after: Some(Duration::from_secs(7)),
            },
        );
        assert_eq!(o.reason.code().as_str(), "Throttled");
        assert_eq!(
            o.requeue,
            Requeue::Backoff {
                min: Some(Duration::from_secs(7))
            }
        );
        // A 5xx or a lost answer may have made the job: the retry looks for it first.
        for e in [
            ApiError::Server(remote("InternalError", 500)),
            ApiError::Timeout(Duration::from_secs(30)),
            ApiError::UnexpectedBody {
                status: 502,
                excerpt: "<html>".into(),
                retry_after: None,
            },
        ] {
            let o = on_api_error(Call::Create, &e);
            assert_eq!(o.reason.code().as_str(), "CreateUnconfirmed", "{e}");
            assert_eq!(o.requeue, Requeue::Backoff { min: None });
        }
        // An unknown code may be a gateway's timeout: the job may exist.
        let o = on_api_error(Call::Create, &ApiError::Unknown(remote("Weird", 400)));
        assert_eq!(o.reason.code().as_str(), "CreateUnconfirmed");
        let o = on_api_error(Call::Poll, &ApiError::Unknown(remote("Weird", 400)));
        assert_eq!(o.reason.code().as_str(), "RemoteError");
    }

    #[test]
    fn every_error_code_on_poll_and_delete() {
        let o = on_api_error(Call::Poll, &ApiError::NotFound(remote("NotFound", 404)));
        assert_eq!(o.reason.code().as_str(), "JobNotFound");
        assert_eq!(o.requeue, Requeue::Never);
        let o = on_api_error(Call::Adopt, &ApiError::NotFound(remote("NotFound", 404)));
        assert_eq!(o.reason.code().as_str(), "JobNotFound");
        let o = on_api_error(Call::Poll, &ApiError::Server(remote("InternalError", 500)));
        assert_eq!(o.reason.code().as_str(), "RemoteUnavailable");
        assert_eq!(o.requeue, Requeue::Backoff { min: None });
        let o = on_api_error(Call::Poll, &ApiError::Timeout(Duration::from_secs(1)));
        assert_eq!(o.reason.code().as_str(), "RemoteUnavailable");
        for status in [400, 403, 409] {
            match on_delete(&Err(ApiError::OperationDenied(remote(
                "OperationDenied",
                status,
            )))) {
                DeletionOutcome::Denied { message } => {
                    let o = on_delete_denied(&message, None);
                    assert_eq!(o.reason.code().as_str(), "DeletionBlocked");
                    assert_eq!(o.requeue, Requeue::Poll);
                    assert_eq!(
                        on_api_error(
                            Call::Delete,
                            &ApiError::OperationDenied(remote("OperationDenied", status))
                        ),
                        o
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            on_delete(&Ok(job("SUCCESSED"))),
            DeletionOutcome::Released {
                already_gone: false
            }
        );
        assert_eq!(
            on_delete(&Err(ApiError::NotFound(remote("NotFound", 404)))),
            DeletionOutcome::Released { already_gone: true }
        );
        match on_delete(&Err(ApiError::Server(remote("InternalError", 500)))) {
            DeletionOutcome::Retry(o) => assert_eq!(o.requeue, Requeue::Backoff { min: None }),
            other => panic!("{other:?}"),
        }
        match on_delete(&Err(ApiError::InvalidApiKey(remote("InvalidApiKey", 401)))) {
            DeletionOutcome::Retry(o) => assert_eq!(o.reason.code().as_str(), "InvalidApiKey"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_finished_job_refused_deletion_is_not_called_running() {
        let message = match on_delete(&Err(ApiError::OperationDenied(remote(
            "OperationDenied",
            400,
        )))) {
            DeletionOutcome::Denied { message } => message,
            other => panic!("{other:?}"),
        };
        let denied = on_delete_denied(&message, None);
        assert_eq!(on_delete_denied(&message, Some(&job("RUNNING"))), denied);
        let o = on_delete_denied(&message, Some(&job("SUCCESSED")));
        assert_eq!(o.reason.code().as_str(), "DeletionRefused");
        assert!(o.reason.message().contains("Orphan"));
        assert!(o.reason.message().contains(&message));
        assert!(!o.reason.message().contains("still pending or running"));
        assert!(denied.reason.message().contains("still pending or running"));
        assert_eq!(o.requeue, Requeue::Backoff { min: None });
    }

    #[test]
    fn a_failed_read_of_a_finished_job_is_no_news_unless_it_stalls() {
        let server = ApiError::Server(remote("InternalError", 500));
        let (reason, requeue) = on_read_failure(Call::Poll, "j", &server, false, true);
        assert_eq!((reason, requeue), (None, Requeue::Backoff { min: None }));
        let (reason, _) = on_read_failure(Call::Poll, "j", &server, false, false);
        assert_eq!(reason.map(|r| r.code()), Some(Code::RemoteUnavailable));
        let gone = ApiError::NotFound(remote("NotFound", 404));
        let (reason, requeue) = on_read_failure(Call::Poll, "j", &gone, false, true);
        assert_eq!(reason.map(|r| r.code()), Some(Code::JobNotFound));
        assert_eq!(requeue, Requeue::Never);
        let (reason, requeue) = on_read_failure(Call::Poll, "j", &gone, true, false);
        assert_eq!(reason.map(|r| r.code()), Some(Code::JobNotVisibleYet));
        assert_eq!(requeue, Requeue::Backoff { min: None });
    }

    #[test]
    fn credential_problems_say_what_to_fix() {
        let o = on_credentials(
            &CredentialProblem::KeyMissing {
                name: "s".into(),
                key: "api-key".into(),
            },
            false,
        );
        assert_eq!(o.reason.code().as_str(), "CredentialsMissing");
        assert!(o.reason.message().contains("api-key"));
        assert_eq!(o.requeue, Requeue::Backoff { min: None });
        let o = on_credentials(&CredentialProblem::NoSecretRefAndNoDefault, false);
        assert!(o.reason.message().contains("spec.apiKeySecretRef"));
        let o = on_credentials(
            &CredentialProblem::SecretNotFound { name: "s".into() },
            true,
        );
        assert!(
            o.reason.message().contains("Orphan"),
            "a deletion names its way out"
        );
    }
}
