//! The committed CRD matches the Rust types, and its CEL rules do what they say.

use kube::CustomResourceExt;
use modelstudio_controller::crd::{crd_yaml, ModelImport, ModelImportSpec};
use serde_json::json;

#[test]
fn committed_crd_matches_the_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/modelimport.yaml");
    let committed = std::fs::read_to_string(path).expect("crds/modelimport.yaml exists");
    assert!(
        committed == crd_yaml(),
        "crds/modelimport.yaml is out of date: run `cargo run -- crd > crds/modelimport.yaml`"
    );
}

#[test]
fn descriptions_flow_for_kubectl_explain() {
    let crd = serde_json::to_value(modelstudio_controller::crd::definition()).unwrap();
    let key = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["storage"]["properties"]["objectKey"]["description"];
    let text = key.as_str().unwrap();
    assert!(text.contains("is not the bucket root"), "{text}");
    assert!(!text.contains('\n'));
}

#[test]
fn names_and_columns() {
    let crd = ModelImport::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("modelimports.modelstudio.io")
    );
    let names = &crd.spec.names;
    assert_eq!(names.kind, "ModelImport");
    assert_eq!(
        names.short_names.as_deref(),
        Some(&["mimport".to_string()][..])
    );
    assert_eq!(
        names.categories.as_deref(),
        Some(&["modelstudio".to_string()][..])
    );
    assert_eq!(crd.spec.scope, "Namespaced");
    let version = &crd.spec.versions[0];
    let columns: Vec<_> = version
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, ["Phase", "Model", "Job", "Ready", "Age"]);
    assert!(version.subresources.as_ref().unwrap().status.is_some());
}

#[test]
fn schema_validates_enums_lengths_and_patterns() {
    let crd = serde_json::to_value(ModelImport::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(
        spec["properties"]["weightType"]["enum"],
        json!(["lora", "full"])
    );
    assert_eq!(
        spec["properties"]["deletionPolicy"]["enum"],
        json!(["Delete", "Orphan"])
    );
    assert_eq!(
        spec["properties"]["deletionPolicy"]["default"],
        json!("Delete")
    );
    assert_eq!(spec["properties"]["source"]["enum"], json!(["oss"]));
    assert_eq!(spec["properties"]["source"]["default"], json!("oss"));
    assert_eq!(spec["properties"]["displayName"]["maxLength"], json!(50));
    assert_eq!(
        spec["properties"]["apiKeySecretRef"]["properties"]["key"]["default"],
        json!("api-key")
    );
    let required: Vec<String> = serde_json::from_value(spec["required"].clone()).unwrap();
    assert_eq!(required, ["baseModel", "storage", "weightType"]);
    let conditions = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        ["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], json!("map"));
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
}

fn spec() -> serde_json::Value {
    json!({
        "baseModel": "qwen3-32b",
        "displayName": "my-lora",
        "weightType": "lora",
        "source": "oss",
        "storage": {"bucketName": "my-bucket", "objectKey": "models/a/"},
        "deletionPolicy": "Delete",
    })
}

fn update_error(change: impl FnOnce(&mut serde_json::Value)) -> Option<String> {
    let old = spec();
    let mut new = spec();
    change(&mut new);
    ModelImportSpec::validate_cel(&new, Some(&old))
        .err()
        .map(|e| format!("{e:?}"))
}

#[test]
fn import_defining_fields_are_immutable() {
    type Change = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Change)> = vec![
        (
            "baseModel",
            Box::new(|s| s["baseModel"] = json!("qwen3-8b")),
        ),
        (
            "displayName",
            Box::new(|s| s["displayName"] = json!("other")),
        ),
        (
            "displayName",
            Box::new(|s| {
                s.as_object_mut().unwrap().remove("displayName");
            }),
        ),
        ("weightType", Box::new(|s| s["weightType"] = json!("full"))),
        (
            "storage",
            Box::new(|s| s["storage"]["objectKey"] = json!("models/b/")),
        ),
        (
            "storage",
            Box::new(|s| s["storage"]["bucketName"] = json!("other-bucket")),
        ),
    ];
    for (field, change) in cases {
        let err = update_error(change).unwrap_or_else(|| panic!("changing {field} was allowed"));
        assert!(
            err.contains(&format!("{field} is immutable")),
            "{field}: {err}"
        );
    }
}

#[test]
fn deletion_policy_and_secret_ref_stay_mutable() {
    assert_eq!(
        update_error(|s| s["deletionPolicy"] = json!("Orphan")),
        None
    );
    assert_eq!(
        update_error(|s| s["apiKeySecretRef"] = json!({"name": "other", "key": "k"})),
        None
    );
}

#[test]
fn job_id_can_be_set_once_then_never_changed() {
    assert_eq!(update_error(|s| s["jobId"] = json!("job-1")), None);
    let old = json!({"jobId": "job-1"}).as_object().unwrap().clone();
    let mut with_job = spec();
    with_job.as_object_mut().unwrap().extend(old);
    let mut changed = with_job.clone();
    changed["jobId"] = json!("job-2");
    let err = ModelImportSpec::validate_cel(&changed, Some(&with_job)).unwrap_err();
    assert!(format!("{err:?}").contains("jobId cannot be changed"));
    let mut removed = with_job.clone();
    removed.as_object_mut().unwrap().remove("jobId");
    assert!(ModelImportSpec::validate_cel(&removed, Some(&with_job)).is_err());
    assert!(ModelImportSpec::validate_cel(&with_job, Some(&with_job)).is_ok());
}
