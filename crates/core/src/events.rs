//! The events both kinds publish on their resources: Normal or Warning, what happened, and what
//! the controller was doing. Imports no other module of the core; the warning that repeats a
//! ModelImport condition is built beside its reasons.

/// Normal or Warning, as Kubernetes Events are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

/// The reason of an event that is not a condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening {
    Created,
    Recovered,
    Adopted,
    Succeeded,
    Failed,
    Deleted,
    Orphaned,
    /// The stored object does not read as a ModelImport (an older or hand-loosened schema).
    Unreadable,
    /// A deployment serves at the capacity asked for.
    Running,
    Scaled,
    LimitsUpdated,
}

impl Happening {
    pub fn as_str(self) -> &'static str {
        match self {
            Happening::Created => "Created",
            Happening::Recovered => "Recovered",
            Happening::Adopted => "Adopted",
            Happening::Succeeded => "Succeeded",
            Happening::Failed => "Failed",
            Happening::Deleted => "Deleted",
            Happening::Orphaned => "Orphaned",
            Happening::Unreadable => "Unreadable",
            Happening::Running => "Running",
            Happening::Scaled => "Scaled",
            Happening::LimitsUpdated => "LimitsUpdated",
        }
    }
}

/// What the controller was doing when an event happened (the Event's `action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CreateImportJob,
    RecoverImportJob,
    AdoptImportJob,
    PollImportJob,
    DeleteImportJob,
    ReadModelImport,
    CreateDeployment,
    RecoverDeployment,
    PollDeployment,
    ScaleDeployment,
    UpdateDeployment,
    DeleteDeployment,
    ReadModelDeployment,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CreateImportJob => "CreateImportJob",
            Action::RecoverImportJob => "RecoverImportJob",
            Action::AdoptImportJob => "AdoptImportJob",
            Action::PollImportJob => "PollImportJob",
            Action::DeleteImportJob => "DeleteImportJob",
            Action::ReadModelImport => "ReadModelImport",
            Action::CreateDeployment => "CreateDeployment",
            Action::RecoverDeployment => "RecoverDeployment",
            Action::PollDeployment => "PollDeployment",
            Action::ScaleDeployment => "ScaleDeployment",
            Action::UpdateDeployment => "UpdateDeployment",
            Action::DeleteDeployment => "DeleteDeployment",
            Action::ReadModelDeployment => "ReadModelDeployment",
        }
    }
}

/// An event to publish on the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub type_: EventType,
    /// A happening's name, or the condition reason a warning is about.
    pub reason: &'static str,
    pub action: Action,
    pub note: String,
}

impl Event {
    /// A Normal event of something that happened.
    pub fn normal(happening: Happening, action: Action, note: String) -> Event {
        Event {
            type_: EventType::Normal,
            reason: happening.as_str(),
            action,
            note,
        }
    }

    /// A Normal or Warning event of a happening that has its type.
    pub fn of(type_: EventType, happening: Happening, action: Action, note: String) -> Event {
        Event {
            type_,
            reason: happening.as_str(),
            action,
            note,
        }
    }

    /// A Warning that the stored object (of `kind`) cannot be read, with what the reader said;
    /// the object is skipped until it changes.
    pub fn unreadable(kind: &str, error: &str) -> Event {
        Event::of(
            EventType::Warning,
            Happening::Unreadable,
            if kind == "ModelDeployment" {
                Action::ReadModelDeployment
            } else {
                Action::ReadModelImport
            },
            format!(
                "The controller cannot read this {kind} ({error}) and leaves it alone: correct the \
                 field with kubectl edit, or delete it and apply it again with a valid spec"
            ),
        )
    }
}
