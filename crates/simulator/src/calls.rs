//! Per-endpoint call counters and the bounded ring of recent requests.

use std::collections::VecDeque;
use std::time::Instant;

use crate::control::{Endpoint, RequestRecord, Stats};

/// How many requests the ring keeps; older ones are dropped.
pub const REQUEST_LOG_CAPACITY: usize = 100_000;

/// Longest header value kept in a record, in characters.
const MAX_HEADER_CHARS: usize = 256;

#[derive(Debug)]
pub struct CallLog {
    started: Instant,
    stats: Stats,
    ring: VecDeque<RequestRecord>,
    capacity: usize,
    next_seq: u64,
}

/// What is known about one call when its answer is decided.
#[derive(Debug)]
pub struct Call {
    pub endpoint: Endpoint,
    pub status: u16,
    pub code: Option<String>,
    pub user_agent: Option<String>,
    pub client: Option<String>,
    pub workspace_id: Option<String>,
    /// The `X-DashScope-WorkSpace` header sent, if any.
    pub workspace_header: Option<String>,
    pub job_id: Option<String>,
    pub deployed_model: Option<String>,
}

impl CallLog {
    pub fn new(started: Instant, capacity: usize) -> Self {
        Self {
            started,
            stats: Stats::default(),
            ring: VecDeque::new(),
            capacity: capacity.max(1),
            next_seq: 0,
        }
    }

    pub fn elapsed_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    pub fn record(&mut self, call: Call, now: Instant) {
        let stats = self.stats.endpoint_mut(call.endpoint);
        stats.total += 1;
        *stats.by_status.entry(call.status).or_default() += 1;
        if let Some(code) = &call.code {
            *stats.by_code.entry(code.clone()).or_default() += 1;
        }
        if self.ring.len() >= self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(RequestRecord {
            seq: self.next_seq,
            endpoint: call.endpoint,
            at_ms: self.elapsed_ms(now),
            status: call.status,
            code: call.code,
            user_agent: call.user_agent,
            client: call.client,
            workspace_id: call.workspace_id,
            workspace_header: call.workspace_header,
            job_id: call.job_id,
            deployed_model: call.deployed_model,
        });
        self.next_seq += 1;
    }

    pub fn count_lost_create(&mut self) {
        self.stats.lost_creates += 1;
    }

    pub fn stats(&self, now: Instant) -> Stats {
        let mut stats = self.stats.clone();
        stats.uptime_ms = self.elapsed_ms(now);
        stats
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.ring.iter().cloned().collect()
    }
}

/// A header value fit for a record: lossy UTF-8, bounded length.
pub fn header_text(value: Option<&axum::http::HeaderValue>) -> Option<String> {
    value.map(|v| {
        String::from_utf8_lossy(v.as_bytes())
            .chars()
            .take(MAX_HEADER_CHARS)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn call(endpoint: Endpoint, status: u16, code: Option<&str>) -> Call {
        Call {
            endpoint,
            status,
            code: code.map(str::to_owned),
            user_agent: Some("ua".into()),
            client: None,
            workspace_id: None,
            workspace_header: None,
            job_id: None,
            deployed_model: None,
        }
    }

    #[test]
    fn counts_and_ring() {
        let t0 = Instant::now();
        let mut log = CallLog::new(t0, 3);
        log.record(call(Endpoint::Delete, 200, None), t0);
        log.record(call(Endpoint::Delete, 400, Some("OperationDenied")), t0);
        log.record(call(Endpoint::Delete, 404, Some("NotFound")), t0);
        log.record(
            call(Endpoint::Get, 200, None),
            t0 + Duration::from_millis(1500),
        );
        let stats = log.stats(t0 + Duration::from_secs(2));
        assert_eq!(stats.uptime_ms, 2000);
        assert_eq!(stats.delete.total, 3);
        assert_eq!(stats.delete.status(200), 1);
        assert_eq!(stats.delete.code("OperationDenied"), 1);
        assert_eq!(stats.delete.code("NotFound"), 1);
        assert_eq!(stats.get.total, 1);
        assert_eq!(stats.create.total, 0);
        let records = log.records();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].seq, 1);
        assert_eq!(records[2].seq, 3);
        assert_eq!(records[2].at_ms, 1500);
        assert_eq!(records[2].endpoint, Endpoint::Get);
    }

    #[test]
    fn header_text_is_bounded() {
        let long = axum::http::HeaderValue::from_str(&"x".repeat(1000)).unwrap();
        assert_eq!(header_text(Some(&long)).unwrap().len(), MAX_HEADER_CHARS);
        let bytes = axum::http::HeaderValue::from_bytes(b"a\xffb").unwrap();
        assert_eq!(header_text(Some(&bytes)).unwrap(), "a\u{fffd}b");
        assert_eq!(header_text(None), None);
    }
}
