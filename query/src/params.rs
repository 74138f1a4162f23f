//! Query-string parsing shared by the HTTP APIs: repeated keys are kept.

use crate::error::QueryError;

pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Self {
        Self(form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// The first of `names` that is present (and not empty), with its value.
    pub fn first_of<'a>(&'a self, names: &[&'a str]) -> Option<(&'a str, &'a str)> {
        names.iter().find_map(|name| self.get(name).map(|value| (*name, value)))
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, QueryError> {
        self.get(key)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| QueryError::BadRequest(format!("parameter '{key}' must be a number, got {v:?}")))
            })
            .transpose()
    }

    /// `[endTs − lookback, endTs]` in ns, from the millisecond parameters Jaeger's
    /// dependencies and Zipkin's API take; `endTs` defaults to `now_ns`.
    pub fn ms_window(&self, now_ns: u64, default_lookback_ms: u64) -> Result<(u64, u64), QueryError> {
        let end_ns = self.number::<u64>("endTs")?.map_or(now_ns, |ms| ms.saturating_mul(1_000_000));
        let lookback_ns = self.number::<u64>("lookback")?.unwrap_or(default_lookback_ms).saturating_mul(1_000_000);
        Ok((end_ns.saturating_sub(lookback_ns), end_ns))
    }

    pub fn duration(&self, key: &str) -> Result<Option<u64>, QueryError> {
        self.get(key)
            .map(|v| {
                tracekeeper_model::duration::parse_go_duration(v)
                    .map_err(|e| QueryError::BadRequest(format!("parameter '{key}': {e}")))
            })
            .transpose()
    }
}
