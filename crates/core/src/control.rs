//! What a person asks of one resource through its annotations, read alike for both kinds:
//! reconcile now (`modelstudio.io/reconcile-requested-at`, as Flux's `requestedAt`) and pause
//! (`modelstudio.io/paused`, as Crossplane's `crossplane.io/paused`). Imports no other module of
//! the core.

/// Setting it to a new value (any: a date, a counter) asks the controller to read the resource's
/// remote object at once, outside the poll cycle; the value handled is recorded in
/// `status.lastHandledReconcileAt`, so a script can wait for it.
pub const RECONCILE_REQUESTED_ANNOTATION: &str = "modelstudio.io/reconcile-requested-at";

/// `"true"` stops every call to Model Studio for the resource while it is set; deleting it then
/// lets the remote object go without deleting it.
pub const PAUSED_ANNOTATION: &str = "modelstudio.io/paused";

/// The annotations of one resource that steer the controller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Control {
    /// [`PAUSED_ANNOTATION`] is `"true"`.
    pub paused: bool,
    /// The value of [`RECONCILE_REQUESTED_ANNOTATION`], if set.
    pub reconcile_requested_at: Option<String>,
}

impl Control {
    /// The reconcile asked for and not handled yet, given the value last handled.
    pub fn reconcile_asked(&self, handled: Option<&str>) -> Option<&str> {
        self.reconcile_requested_at
            .as_deref()
            .filter(|asked| !asked.is_empty() && Some(*asked) != handled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconcile_is_asked_by_a_value_not_handled_yet() {
        let asked = |v: Option<&str>| Control {
            reconcile_requested_at: v.map(String::from),
            ..Default::default()
        };
        assert_eq!(asked(None).reconcile_asked(None), None);
        assert_eq!(asked(Some("1")).reconcile_asked(None), Some("1"));
        assert_eq!(asked(Some("1")).reconcile_asked(Some("1")), None);
        assert_eq!(asked(Some("2")).reconcile_asked(Some("1")), Some("2"));
        assert_eq!(asked(Some("")).reconcile_asked(None), None);
    }
}
