//! What one search may cost: how many candidate traces it may read, and for how long.
//! A search that reaches either stops there and answers with the newest matches among
//! what it read, and says how far it got: never silently incomplete.

use std::ops::Deref;
use std::time::{Duration, Instant};

use crate::engine::Found;

/// Default most candidate traces one search reads (`--max-traces-inspected`).
pub const DEFAULT_MAX_TRACES_INSPECTED: usize = 50_000;
/// Default longest one search runs (`--query-timeout`).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest time range one search covers (`--max-search-window`): 30 days.
pub const DEFAULT_MAX_WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// The response header that says an answer covers less than was asked, and why.
pub const PARTIAL_HEADER: &str = "x-tracekeeper-partial";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchBudget {
    pub max_traces_inspected: usize,
    pub timeout: Duration,
    /// A longer range is searched from its end back this far only.
    pub max_window: Duration,
}

impl Default for SearchBudget {
    fn default() -> Self {
        Self {
            max_traces_inspected: DEFAULT_MAX_TRACES_INSPECTED,
            timeout: DEFAULT_QUERY_TIMEOUT,
            max_window: DEFAULT_MAX_WINDOW,
        }
    }
}

impl SearchBudget {
    /// The oldest start a search of `[start_ns, end_ns]` covers at `now_ns`, and the
    /// note saying so when that cuts the range short. The window counts back from the
    /// range's end, or from now when the range ends in the future: a range up to the
    /// year 2100 still covers the recent past, and the little beyond now (spans may start
    /// at most the future skew ahead) is never cut.
    pub fn window_from(&self, start_ns: u64, end_ns: u64, now_ns: u64) -> (u64, Option<String>) {
        let max_window = u64::try_from(self.max_window.as_nanos()).unwrap_or(u64::MAX);
        let earliest = end_ns.min(now_ns).saturating_sub(max_window);
        if start_ns >= earliest {
            return (start_ns, None);
        }
        let note = format!(
            "search covered only {:?} of the range (--max-search-window); results are exact for traces starting after {earliest} ns",
            self.max_window
        );
        (earliest, Some(note))
    }
}

/// The running account of one search.
pub(crate) struct Spending {
    budget: SearchBudget,
    started: Instant,
    pub inspected: usize,
}

impl Spending {
    pub fn new(budget: SearchBudget) -> Self {
        Self { budget, started: Instant::now(), inspected: 0 }
    }

    /// Why the search must stop before reading another trace, if it must. It always
    /// reads at least one, so that a zero timeout still answers something.
    pub fn exhausted(&self, covered_from_ns: u64) -> Option<String> {
        let why = if self.inspected >= self.budget.max_traces_inspected {
            format!("read the most traces a search may ({}; --max-traces-inspected)", self.budget.max_traces_inspected)
        } else if self.inspected > 0 && self.started.elapsed() >= self.budget.timeout {
            format!("reached its {:?} deadline (--query-timeout)", self.budget.timeout)
        } else {
            return None;
        };
        Some(format!(
            "search stopped early: it {why}; results are exact for traces starting after {covered_from_ns} ns"
        ))
    }
}

/// A search's answer: the hits, newest first, and why it covers less of the range than
/// asked, if it does.
#[derive(Debug, Default)]
pub struct Searched {
    pub found: Vec<Found>,
    pub partial: Option<String>,
}

impl Deref for Searched {
    type Target = Vec<Found>;
    fn deref(&self) -> &Vec<Found> {
        &self.found
    }
}

impl IntoIterator for Searched {
    type Item = Found;
    type IntoIter = std::vec::IntoIter<Found>;
    fn into_iter(self) -> Self::IntoIter {
        self.found.into_iter()
    }
}

/// `response` with the partial-answer header when `note` is given.
pub fn with_partial_note(mut response: axum::response::Response, note: Option<&str>) -> axum::response::Response {
    if let Some(value) = note.and_then(|n| axum::http::HeaderValue::from_str(n).ok()) {
        tracing::info!(note = ?value, "search answered partially");
        response.headers_mut().insert(PARTIAL_HEADER, value);
    }
    response
}
