//! Conditions, either kind's, between a status as written (Kubernetes' `Condition`) and the
//! core's terms.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use modelstudio_core::conditions;
use modelstudio_core::outputs::OUTPUTS_READY;

/// Conditions as written in a status, in the core's terms. `OutputsReady` is left out: the
/// outputs' own field manager writes it (`pass::outputs`), so the status apply, which writes back
/// the other conditions it read, never holds a stale copy of it.
pub fn core_conditions(conditions: &[Condition]) -> Vec<conditions::Condition> {
    conditions
        .iter()
        .filter(|c| c.type_ != OUTPUTS_READY)
        .map(core_condition)
        .collect()
}

/// One condition as written in a status, in the core's terms.
pub fn core_condition(c: &Condition) -> conditions::Condition {
    conditions::Condition {
        type_: c.type_.clone(),
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        observed_generation: c.observed_generation,
        last_transition_time: c.last_transition_time.0,
    }
}

/// The core's conditions as a status writes them.
pub fn crd_conditions(conditions: &[conditions::Condition]) -> Vec<Condition> {
    conditions.iter().map(crd_condition).collect()
}

/// One of the core's conditions as a status writes it.
pub fn crd_condition(c: &conditions::Condition) -> Condition {
    Condition {
        type_: c.type_.clone(),
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: c.message.clone(),
        observed_generation: c.observed_generation,
        last_transition_time: Time(c.last_transition_time),
    }
}
