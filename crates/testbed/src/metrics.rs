//! Reads the controller's /metrics text (OpenMetrics) into samples.

use std::collections::BTreeMap;

/// One sample: the metric's name, its labels and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of the text; comments and lines that do not parse are skipped.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(sample)
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let (head, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (head, ""),
    };
    let mut map = BTreeMap::new();
    // Label values here are static names: no escaped quotes or commas inside them.
    for pair in labels.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        map.insert(k.to_string(), v.trim_matches('"').to_string());
    }
    Some(Sample {
        name: name.to_string(),
        labels: map,
        value,
    })
}

/// The sum of the samples of `name` whose labels include every one of `labels`.
pub fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// The /metrics text of the controller serving on `addr`.
pub async fn scrape(addr: &str) -> Result<String, String> {
    let url = format!("http://{addr}/metrics");
    let response = reqwest::get(&url)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    response.text().await.map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels() {
        let text = "# HELP x y\nmodelstudio_kubernetes_requests_total{verb=\"get\",resource=\"secrets\",subresource=\"\"} 3\nmodelstudio_status_writes_total 7\n# EOF\n";
        let all = samples(text);
        assert_eq!(all.len(), 2);
        assert_eq!(
            sum(
                &all,
                "modelstudio_kubernetes_requests_total",
                &[("verb", "get")]
            ),
            3.0
        );
        assert_eq!(
            sum(
                &all,
                "modelstudio_kubernetes_requests_total",
                &[("verb", "list")]
            ),
            0.0
        );
        assert_eq!(all[0].labels["subresource"], "");
        assert_eq!(sum(&all, "modelstudio_status_writes_total", &[]), 7.0);
    }
}
