//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go does it: every write
//! carries the resourceVersion that was read, so of two replicas racing for the Lease exactly one
//! wins (the other gets 409 Conflict); expiry is judged by when this replica last saw the Lease
//! change on its own clock, so clock skew between nodes cannot make two leaders.
//!
//! A leader that cannot renew within `renew_deadline` gives up before its Lease can expire for the
//! others (`renew_deadline < lease_duration`), so two replicas never both act.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Lease writes are updates carrying the resourceVersion read (client-go's way; a
/// server-side apply would have no compare-and-swap), named after the controller in managedFields.
fn write_params() -> PostParams {
    PostParams {
        field_manager: Some(crate::config::MANAGER.into()),
        ..Default::default()
    }
}

/// Timing of the election.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a Lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it gives up.
    pub renew_deadline: Duration,
    /// How often candidates try and leaders renew.
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What a candidate does after reading the Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// No Lease yet: create it holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Free or expired: take it over.
    Acquire,
    /// Someone else holds a valid Lease.
    Wait,
}

/// Decides from the Lease's holder and how long ago this replica saw the Lease record change.
pub fn step(
    holder: Option<Option<&str>>,
    me: &str,
    unchanged_for: Duration,
    lease_duration: Duration,
) -> Step {
    match holder {
        None => Step::Create,
        Some(Some(h)) if h == me => Step::Renew,
        Some(None) | Some(Some("")) => Step::Acquire,
        Some(Some(_)) if unchanged_for > lease_duration => Step::Acquire,
        Some(Some(_)) => Step::Wait,
    }
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    /// The holder and renew time last seen, and when they were first seen.
    seen: Option<(Option<String>, Option<MicroTime>, Instant)>,
}

impl Elector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: Timing,
    ) -> Self {
        Elector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            timing,
            seen: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// One attempt to take or renew the Lease. `Ok(true)` when we hold it afterwards.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let current = self.api.get_opt(&self.name).await?;
        let holder = current
            .as_ref()
            .map(|l| l.spec.as_ref().and_then(|s| s.holder_identity.clone()));
        let renew = current
            .as_ref()
            .and_then(|l| l.spec.as_ref().and_then(|s| s.renew_time.clone()));
        let flat_holder = holder.clone().flatten();
        let unchanged_for = match &self.seen {
            Some((h, r, since)) if *h == flat_holder && *r == renew => since.elapsed(),
            _ => {
                self.seen = Some((flat_holder.clone(), renew.clone(), Instant::now()));
                Duration::ZERO
            }
        };
        let step = step(
            holder.as_ref().map(|h| h.as_deref()),
            &self.identity,
            unchanged_for,
            self.timing.lease_duration,
        );
        let seconds = i32::try_from(self.timing.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let result = match (step, current) {
            (Step::Wait, _) => return Ok(false),
            (Step::Create, _) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(MicroTime(now)),
                        renew_time: Some(MicroTime(now)),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                self.api.create(&write_params(), &lease).await.map(|_| ())
            }
            (step, Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                if step == Step::Acquire {
                    spec.holder_identity = Some(self.identity.clone());
                    spec.acquire_time = Some(MicroTime(now));
                    spec.lease_transitions =
                        Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                }
                spec.renew_time = Some(MicroTime(now));
                spec.lease_duration_seconds = Some(seconds);
                // The resourceVersion read above makes this write fail if anyone wrote since.
                self.api
                    .replace(&self.name, &write_params(), &lease)
                    .await
                    .map(|_| ())
            }
            (_, None) => return Ok(false),
        };
        match result {
            Ok(()) => {
                if step != Step::Renew {
                    info!(lease = %self.name, identity = %self.identity, "acquired leadership");
                }
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                debug!(lease = %self.name, "another replica wrote the lease first");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => warn!(error = %e, "could not read or write the leader lease"),
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }

    /// Renews until a renewal has failed for `renew_deadline`; returns when leadership is lost.
    pub async fn hold(&mut self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            // A hung request must not keep a leader that can no longer renew.
            let attempt =
                tokio::time::timeout(self.timing.retry_period, self.try_acquire_or_renew()).await;
            match attempt {
                Ok(Ok(true)) => last_renewal = Instant::now(),
                Ok(Ok(false)) => {
                    warn!(lease = %self.name, "another replica holds the lease now");
                    return;
                }
                Ok(Err(e)) => warn!(error = %e, "could not renew the leader lease"),
                Err(_) => warn!(lease = %self.name, "renewing the leader lease timed out"),
            }
            if last_renewal.elapsed() >= self.timing.renew_deadline {
                warn!(lease = %self.name, "could not renew the lease in time");
                return;
            }
        }
    }

    /// Gives the Lease up at shutdown so that another replica takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        match self.api.replace(&self.name, &write_params(), &lease).await {
            Ok(_) => info!(lease = %self.name, "released leadership"),
            Err(e) => warn!(error = %e, "could not release the leader lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn steps() {
        assert_eq!(step(None, "a", Duration::ZERO, D), Step::Create);
        assert_eq!(step(Some(Some("a")), "a", Duration::ZERO, D), Step::Renew);
        assert_eq!(step(Some(None), "a", Duration::ZERO, D), Step::Acquire);
        assert_eq!(step(Some(Some("")), "a", Duration::ZERO, D), Step::Acquire);
        assert_eq!(
            step(Some(Some("b")), "a", Duration::from_secs(3), D),
            Step::Wait
        );
        assert_eq!(
            step(Some(Some("b")), "a", Duration::from_secs(16), D),
            Step::Acquire
        );
    }

    #[test]
    fn a_leader_gives_up_before_others_may_take_over() {
        let t = Timing::default();
        assert!(t.renew_deadline + t.retry_period <= t.lease_duration);
    }
}
