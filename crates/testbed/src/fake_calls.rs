//! What the in-memory fakes share: the log of every call and the failures scripted for the next
//! call of an operation.

use modelstudio_core::api::{ApiError, Operation};
use std::collections::VecDeque;

type MakeError = Box<dyn FnOnce() -> ApiError + Send>;

#[derive(Default)]
pub(crate) struct CallScript {
    failures: VecDeque<(Operation, MakeError)>,
    calls: Vec<(Operation, Option<String>)>,
}

impl CallScript {
    /// The next call of `op` fails with what `make` returns.
    pub fn fail_next(&mut self, op: Operation, make: impl FnOnce() -> ApiError + Send + 'static) {
        self.failures.push_back((op, Box::new(make)));
    }

    /// Every call so far: the operation and the object it named.
    pub fn calls(&self) -> &[(Operation, Option<String>)] {
        &self.calls
    }

    pub fn count(&self, op: Operation) -> usize {
        self.calls.iter().filter(|(o, _)| *o == op).count()
    }

    /// Logs the call; its scripted failure, if one is due, to be made once the fake's lock is
    /// released.
    pub fn enter(&mut self, op: Operation, named: Option<&str>) -> Option<MakeError> {
        self.calls.push((op, named.map(str::to_string)));
        let i = self.failures.iter().position(|(o, _)| *o == op)?;
        self.failures.remove(i).map(|(_, make)| make)
    }
}
