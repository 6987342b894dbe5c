//! Counts the controller's requests to the Kubernetes API by verb and resource, as a layer of the
//! kube client, so that every request (watches, reads, writes, events, the Lease) is counted once
//! at the one place they all pass.

use crate::metrics::{KubeLabels, Metrics};
use http::{Method, Request};
use std::sync::Arc;
use tower::util::MapRequestLayer;

/// The resources the controller uses, as metric labels; anything else is `other`.
const RESOURCES: &[&str] = &[
    "modelimports",
    "modeldeployments",
    "secrets",
    "configmaps",
    "events",
    "leases",
    "namespaces",
];

/// The Kubernetes verb and resource of a request, from its method, path and query.
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> KubeLabels {
    // /api/v1/namespaces/{ns}/{resource}[/{name}[/{subresource}]], or /apis/{group}/{version}/…
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[],
    };
    let rest = match rest {
        ["namespaces", _ns, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    let (resource, named, subresource) = match rest {
        [resource] => (*resource, false, None),
        [resource, _name] => (*resource, true, None),
        [resource, _name, sub, ..] => (*resource, true, Some(*sub)),
        [] => ("", false, None),
    };
    let watch = query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    });
    let verb = match *method {
        Method::GET if watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    let resource = RESOURCES
        .iter()
        .find(|r| **r == resource)
        .copied()
        .unwrap_or("other");
    KubeLabels {
        verb,
        resource,
        subresource: match subresource {
            Some("status") => "status",
            Some(_) => "other",
            None => "",
        },
    }
}

/// The layer that counts each request into `metrics`.
pub fn counting_layer<B>(
    metrics: Arc<Metrics>,
) -> MapRequestLayer<impl Fn(Request<B>) -> Request<B> + Clone> {
    MapRequestLayer::new(move |request: Request<B>| {
        let labels = classify(
            request.method(),
            request.uri().path(),
            request.uri().query(),
        );
        metrics.kube_requests.get_or_create(&labels).inc();
        request
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(
        method: Method,
        path: &str,
        query: Option<&str>,
    ) -> (&'static str, &'static str, &'static str) {
        let l = classify(&method, path, query);
        (l.verb, l.resource, l.subresource)
    }

    #[test]
    fn verbs_and_resources_of_the_controllers_requests() {
        let mi = "/apis/modelstudio.io/v1alpha1";
        assert_eq!(
            labels(
                Method::GET,
                &format!("{mi}/modelimports"),
                Some("watch=true&resourceVersion=5")
            ),
            ("watch", "modelimports", "")
        );
        assert_eq!(
            labels(
                Method::GET,
                &format!("{mi}/modelimports"),
                Some("limit=500")
            ),
            ("list", "modelimports", "")
        );
        assert_eq!(
            labels(
                Method::GET,
                &format!("{mi}/namespaces/a/modelimports"),
                None
            ),
            ("list", "modelimports", "")
        );
        assert_eq!(
            labels(
                Method::GET,
                &format!("{mi}/namespaces/a/modelimports/x/status"),
                None
            ),
            ("get", "modelimports", "status")
        );
        assert_eq!(
            labels(
                Method::PATCH,
                &format!("{mi}/namespaces/a/modelimports/x/status"),
                Some("fieldManager=m&force=true")
            ),
            ("patch", "modelimports", "status")
        );
        assert_eq!(
            labels(
                Method::PATCH,
                &format!("{mi}/namespaces/a/modelimports/x"),
                None
            ),
            ("patch", "modelimports", "")
        );
        assert_eq!(
            labels(Method::GET, "/api/v1/namespaces/a/secrets/key", None),
            ("get", "secrets", "")
        );
        assert_eq!(
            labels(Method::GET, "/api/v1/secrets", Some("watch=1")),
            ("watch", "secrets", "")
        );
        assert_eq!(
            labels(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/a/events",
                None
            ),
            ("create", "events", "")
        );
        assert_eq!(
            labels(
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/a/leases/l",
                None
            ),
            ("update", "leases", "")
        );
        assert_eq!(
            labels(Method::GET, "/api/v1/namespaces/a", None),
            ("get", "namespaces", "")
        );
        assert_eq!(labels(Method::GET, "/version", None), ("list", "other", ""));
        assert_eq!(
            labels(Method::DELETE, "/api/v1/namespaces/a/pods", None),
            ("deletecollection", "other", "")
        );
        assert_eq!(
            labels(Method::POST, "/api/v1/namespaces/a/configmaps", None),
            ("create", "configmaps", "")
        );
    }
}
