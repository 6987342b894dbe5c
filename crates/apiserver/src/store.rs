//! In-memory object store: objects keyed by (group, resource) and (namespace, name),
//! one server-wide monotonic resourceVersion, a bounded event history, and watch fan-out.
//!
//! Pure logic with no HTTP and no async: the HTTP layer holds the lock for the duration
//! of one request, so every write and its watch notifications happen atomically and in
//! resourceVersion order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::selector::Selectors;

/// (API group, plural resource name); the core group is "".
pub type GroupResource = (String, String);

pub fn gr(group: &str, resource: &str) -> GroupResource {
    (group.to_string(), resource.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change, kept in history so watches can resume and `Exact` lists can
/// be answered at an older resourceVersion.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub gr: GroupResource,
    pub kind: EventType,
    pub object: Value,
    pub old: Option<Value>,
}

/// What a watch stream receives.
#[derive(Debug, Clone)]
pub enum WatchMsg {
    Event(EventType, Value),
    /// A bookmark at this resourceVersion; `initial_end` marks the end of `sendInitialEvents`.
    Bookmark {
        rv: u64,
        initial_end: bool,
    },
}

/// Where a new watch starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WatchStart {
    /// Synthetic ADDED events for the current state, then changes (rv unset or "0").
    CurrentState,
    /// Like `CurrentState` and then a bookmark with the `k8s.io/initial-events-end` annotation.
    InitialEventsWithBookmark,
    /// Only changes after this resourceVersion.
    After(u64),
}

/// The requested resourceVersion is no longer in history.
#[derive(Debug, Clone, PartialEq)]
pub struct TooOld {
    pub requested: u64,
    pub oldest: u64,
}

struct Watcher {
    id: u64,
    gr: GroupResource,
    namespace: Option<String>,
    selectors: Selectors,
    tx: UnboundedSender<WatchMsg>,
}

impl Watcher {
    fn in_scope(&self, obj: &Value) -> bool {
        match &self.namespace {
            Some(ns) => {
                obj.pointer("/metadata/namespace").and_then(|v| v.as_str()) == Some(ns.as_str())
            }
            None => true,
        }
    }

    fn sees(&self, obj: &Value) -> bool {
        self.in_scope(obj) && self.selectors.matches(obj)
    }

    /// Translate an event for this watcher: an object that starts matching the selector
    /// is ADDED, one that stops matching is DELETED (as kube-apiserver does).
    fn translate(&self, ev: &Event) -> Option<WatchMsg> {
        if ev.gr != self.gr {
            return None;
        }
        let now = self.sees(&ev.object);
        let before = ev.old.as_ref().is_some_and(|o| self.sees(o));
        let t = match ev.kind {
            EventType::Added => now.then_some(EventType::Added),
            EventType::Deleted => (now || before).then_some(EventType::Deleted),
            EventType::Modified => match (before, now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            },
        }?;
        Some(WatchMsg::Event(t, ev.object.clone()))
    }
}

pub fn key_of(obj: &Value) -> (String, String) {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    (s("/metadata/namespace"), s("/metadata/name"))
}

pub fn rv_of(obj: &Value) -> u64 {
    obj.pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(m) = obj.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

pub const DEFAULT_HISTORY_LIMIT: usize = 5000;

pub struct Store {
    rv: u64,
    objects: HashMap<GroupResource, BTreeMap<(String, String), Value>>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Events with rv <= this are gone from history; resuming from an older rv answers 410.
    compacted_through: u64,
    watchers: Vec<Watcher>,
    next_watcher: u64,
}

impl Default for Store {
    fn default() -> Self {
        Self::new(DEFAULT_HISTORY_LIMIT)
    }
}

impl Store {
    pub fn new(history_limit: usize) -> Self {
        Store {
            rv: 0,
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_through: 0,
            watchers: Vec::new(),
            next_watcher: 1,
        }
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, gr: &GroupResource, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(gr)?
            .get(&(ns.to_string(), name.to_string()))
    }

    /// Objects of a resource (in one namespace, or all), filtered, sorted by namespace/name.
    pub fn list(&self, gr: &GroupResource, ns: Option<&str>, sel: &Selectors) -> Vec<Value> {
        let Some(m) = self.objects.get(gr) else {
            return Vec::new();
        };
        m.iter()
            .filter(|((ons, _), _)| ns.is_none_or(|n| n == ons))
            .filter(|(_, o)| sel.matches(o))
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// The list as it was at `rv`, rebuilt by undoing newer history.
    pub fn list_at(
        &self,
        gr: &GroupResource,
        ns: Option<&str>,
        sel: &Selectors,
        rv: u64,
    ) -> Result<Vec<Value>, TooOld> {
        if rv < self.compacted_through {
            return Err(TooOld {
                requested: rv,
                oldest: self.compacted_through,
            });
        }
        let mut state: BTreeMap<(String, String), Value> =
            self.objects.get(gr).cloned().unwrap_or_default();
        for ev in self.history.iter().rev().take_while(|e| e.rv > rv) {
            if &ev.gr != gr {
                continue;
            }
            let key = key_of(&ev.object);
            match (&ev.kind, &ev.old) {
                (EventType::Added, _) => {
                    state.remove(&key);
                }
                (_, Some(old)) => {
                    state.insert(key, old.clone());
                }
                (_, None) => {}
            }
        }
        Ok(state
            .into_iter()
            .filter(|((ons, _), _)| ns.is_none_or(|n| n == ons))
            .filter(|(_, o)| sel.matches(o))
            .map(|(_, o)| o)
            .collect())
    }

    /// Namespaces (with their resources) that have any object in `ns`.
    pub fn resources_in_namespace(&self, ns: &str) -> Vec<(GroupResource, String)> {
        let mut out = Vec::new();
        for (gr, m) in &self.objects {
            for (ons, name) in m.keys() {
                if ons == ns {
                    out.push((gr.clone(), name.clone()));
                }
            }
        }
        out.sort();
        out
    }

    fn commit(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        self.watchers.retain(|w| match w.translate(&ev) {
            Some(msg) => w.tx.send(msg).is_ok(),
            None => !w.tx.is_closed(),
        });
        self.history.push_back(ev);
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.compacted_through = e.rv;
            }
        }
    }

    /// Insert a new object (caller checked it does not exist); returns it with its resourceVersion.
    pub fn insert(&mut self, gr: &GroupResource, mut obj: Value) -> Value {
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        let key = key_of(&obj);
        let old = self
            .objects
            .entry(gr.clone())
            .or_default()
            .insert(key, obj.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.commit(Event {
            rv: self.rv,
            gr: gr.clone(),
            kind,
            object: obj.clone(),
            old,
        });
        obj
    }

    /// Replace an existing object (or insert); returns it with its new resourceVersion.
    pub fn replace(&mut self, gr: &GroupResource, obj: Value) -> Value {
        self.insert(gr, obj)
    }

    /// Remove an object; the DELETED event carries a fresh resourceVersion.
    pub fn remove(&mut self, gr: &GroupResource, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self
            .objects
            .get_mut(gr)?
            .remove(&(ns.to_string(), name.to_string()))?;
        let old = obj.clone();
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        self.commit(Event {
            rv: self.rv,
            gr: gr.clone(),
            kind: EventType::Deleted,
            object: obj.clone(),
            old: Some(old),
        });
        Some(obj)
    }

    /// Drop every object of a resource without events (used when its CRD goes away).
    pub fn purge_resource(&mut self, gr: &GroupResource) -> Vec<Value> {
        let names: Vec<(String, String)> = self
            .objects
            .get(gr)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        names
            .into_iter()
            .filter_map(|(ns, n)| self.remove(gr, &ns, &n))
            .collect()
    }

    /// Register a watch; replays initial state or history first so nothing is missed.
    pub fn watch(
        &mut self,
        gr: &GroupResource,
        namespace: Option<&str>,
        selectors: Selectors,
        start: WatchStart,
    ) -> Result<(u64, UnboundedReceiver<WatchMsg>), TooOld> {
        let (tx, rx) = unbounded_channel();
        let w = Watcher {
            id: self.next_watcher,
            gr: gr.clone(),
            namespace: namespace.map(str::to_string),
            selectors,
            tx,
        };
        match start {
            WatchStart::After(rv) => {
                if rv < self.compacted_through {
                    return Err(TooOld {
                        requested: rv,
                        oldest: self.compacted_through,
                    });
                }
                for ev in self.history.iter().filter(|e| e.rv > rv) {
                    if let Some(msg) = w.translate(ev) {
                        let _ = w.tx.send(msg);
                    }
                }
            }
            WatchStart::CurrentState | WatchStart::InitialEventsWithBookmark => {
                for o in self.list(gr, namespace, &w.selectors) {
                    let _ = w.tx.send(WatchMsg::Event(EventType::Added, o));
                }
                if start == WatchStart::InitialEventsWithBookmark {
                    let _ = w.tx.send(WatchMsg::Bookmark {
                        rv: self.rv,
                        initial_end: true,
                    });
                }
            }
        }
        self.next_watcher += 1;
        let id = w.id;
        self.watchers.push(w);
        Ok((id, rx))
    }

    /// Queue a bookmark at the current resourceVersion on one watch (all earlier events are
    /// already queued on it, so the bookmark is truthful).
    pub fn bookmark(&mut self, watcher: u64) {
        let rv = self.rv;
        if let Some(w) = self.watchers.iter().find(|w| w.id == watcher) {
            let _ = w.tx.send(WatchMsg::Bookmark {
                rv,
                initial_end: false,
            });
        }
    }

    pub fn unwatch(&mut self, watcher: u64) {
        self.watchers.retain(|w| w.id != watcher);
    }

    /// Close every open watch stream (clients see the stream end and re-watch).
    pub fn drop_watches(&mut self) {
        self.watchers.clear();
    }

    pub fn watch_count(&self) -> usize {
        self.watchers.iter().filter(|w| !w.tx.is_closed()).count()
    }

    /// Forget all history: every resourceVersion before the current one answers 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted_through = self.rv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::LabelSelector;
    use serde_json::json;

    fn obj(ns: &str, name: &str, app: &str) -> Value {
        json!({"metadata": {"namespace": ns, "name": name, "labels": {"app": app}}})
    }

    fn drain(rx: &mut UnboundedReceiver<WatchMsg>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            match m {
                WatchMsg::Event(t, o) => out.push((t.as_str().to_string(), key_of(&o).1)),
                WatchMsg::Bookmark { rv, .. } => out.push(("BOOKMARK".into(), rv.to_string())),
            }
        }
        out
    }

    #[test]
    fn resource_versions_are_monotonic_across_resources() {
        let mut s = Store::default();
        let a = s.insert(&gr("", "secrets"), obj("d", "a", "x"));
        let b = s.insert(&gr("x.io", "things"), obj("d", "b", "x"));
        assert!(rv_of(&b) > rv_of(&a));
        let d = s.remove(&gr("", "secrets"), "d", "a").unwrap();
        assert!(rv_of(&d) > rv_of(&b));
        assert!(s.get(&gr("", "secrets"), "d", "a").is_none());
    }

    #[test]
    fn watch_resumes_from_history_and_filters() {
        let mut s = Store::default();
        let g = gr("", "secrets");
        let first = s.insert(&g, obj("d", "a", "x"));
        s.insert(&g, obj("other", "b", "x"));
        s.insert(&g, obj("d", "c", "y"));
        let (_, mut rx) = s
            .watch(
                &g,
                Some("d"),
                Selectors::default(),
                WatchStart::After(rv_of(&first)),
            )
            .unwrap();
        assert_eq!(drain(&mut rx), vec![("ADDED".to_string(), "c".to_string())]);
        s.remove(&g, "d", "c");
        assert_eq!(
            drain(&mut rx),
            vec![("DELETED".to_string(), "c".to_string())]
        );
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let mut s = Store::default();
        let g = gr("", "secrets");
        s.insert(&g, obj("d", "a", "x"));
        let sel = Selectors {
            labels: LabelSelector::parse("app=y").unwrap(),
            ..Default::default()
        };
        let (_, mut rx) = s.watch(&g, None, sel, WatchStart::CurrentState).unwrap();
        assert!(drain(&mut rx).is_empty());
        s.replace(&g, obj("d", "a", "y"));
        s.replace(&g, obj("d", "a", "y"));
        s.replace(&g, obj("d", "a", "z"));
        let got: Vec<String> = drain(&mut rx).into_iter().map(|e| e.0).collect();
        assert_eq!(got, vec!["ADDED", "MODIFIED", "DELETED"]);
    }

    #[test]
    fn initial_events_end_with_bookmark() {
        let mut s = Store::default();
        let g = gr("", "secrets");
        s.insert(&g, obj("d", "a", "x"));
        let (_, mut rx) = s
            .watch(
                &g,
                None,
                Selectors::default(),
                WatchStart::InitialEventsWithBookmark,
            )
            .unwrap();
        let got = drain(&mut rx);
        assert_eq!(got[0].0, "ADDED");
        assert_eq!(got[1], ("BOOKMARK".to_string(), "1".to_string()));
    }

    #[test]
    fn bounded_history_and_compaction_answer_too_old() {
        let mut s = Store::new(3);
        let g = gr("", "secrets");
        for i in 0..5 {
            s.insert(&g, obj("d", &format!("o{i}"), "x"));
        }
        assert!(s
            .watch(&g, None, Selectors::default(), WatchStart::After(1))
            .is_err());
        assert!(s
            .watch(&g, None, Selectors::default(), WatchStart::After(2))
            .is_ok());
        s.compact();
        let err = s
            .watch(&g, None, Selectors::default(), WatchStart::After(4))
            .unwrap_err();
        assert_eq!(
            err,
            TooOld {
                requested: 4,
                oldest: 5
            }
        );
        assert!(s
            .watch(&g, None, Selectors::default(), WatchStart::After(5))
            .is_ok());
    }

    #[test]
    fn list_at_rebuilds_old_state() {
        let mut s = Store::default();
        let g = gr("", "secrets");
        s.insert(&g, obj("d", "a", "x"));
        let at = s.current_rv();
        s.insert(&g, obj("d", "b", "x"));
        s.replace(&g, obj("d", "a", "changed"));
        s.remove(&g, "d", "a");
        let old = s.list_at(&g, None, &Selectors::default(), at).unwrap();
        assert_eq!(old.len(), 1);
        assert_eq!(old[0]["metadata"]["labels"]["app"], "x");
        assert_eq!(s.list(&g, None, &Selectors::default()).len(), 1);
    }

    #[test]
    fn drop_watches_closes_streams() {
        let mut s = Store::default();
        let g = gr("", "secrets");
        let (_, mut rx) = s
            .watch(&g, None, Selectors::default(), WatchStart::After(0))
            .unwrap();
        assert_eq!(s.watch_count(), 1);
        s.drop_watches();
        assert!(matches!(
            rx.try_recv(),
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected)
        ));
    }
}
