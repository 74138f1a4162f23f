//! Tempo's tag APIs, which Grafana's TraceQL editor and Drilldown autocomplete from:
//! tag names by scope (`span`, `resource`, `event`, `link`, `instrumentation`,
//! `intrinsic`) and a tag's values, typed, both narrowed by a TraceQL query (`q`) to
//! the spans it selects. Bounded: they read the newest [`LISTING_TRACES`] traces of the
//! window (`start`/`end`, default the last day) and list at most [`MAX_VALUES`] values.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use tracekeeper_storage::IndexTerm;

use crate::error::{QueryError, TextResult};
use crate::params::Params;
use crate::tempo_api::{parse_traceql, window};
use crate::traceql::{self, Expr, TraceView, Value as FieldValue};
use crate::{QueryState, Tenant};
use tracekeeper_serve::{Declared, Group, Routes, Shape};

/// Most traces read to list tag names and values: enough for the names and values in
/// use, few enough to answer as the editor types (about 100 ms at 10M spans stored).
const LISTING_TRACES: usize = 200;
/// Most values one listing returns.
pub const MAX_VALUES: usize = 5_000;

const INTRINSICS: [&str; 26] = [
    "duration",
    "event:name",
    "event:timeSinceStart",
    "instrumentation:name",
    "instrumentation:version",
    "kind",
    "link:spanID",
    "link:traceID",
    "name",
    "rootName",
    "rootServiceName",
    "span:childCount",
    "span:duration",
    "span:id",
    "span:kind",
    "span:name",
    "span:parentID",
    "span:status",
    "span:statusMessage",
    "status",
    "statusMessage",
    "trace:duration",
    "trace:id",
    "trace:rootName",
    "trace:rootService",
    "traceDuration",
];

/// The scopes attribute names are listed under, in Tempo's order.
const SCOPES: [&str; 5] = ["resource", "span", "event", "link", "instrumentation"];

pub fn router(state: Arc<QueryState>) -> Routes {
    Group::new(Declared::read(Shape::Text))
        .get("/api/search/tags", tags)
        .get("/api/v2/search/tags", tags_v2)
        .get("/api/search/tag/{tag}/values", tag_values)
        .get("/api/v2/search/tag/{tag}/values", tag_values_v2)
        .with_state(state)
}

/// Recent traces and, per trace, the spans `q` selects (every span without `q`).
async fn selected(
    state: &QueryState,
    tenant: &str,
    params: &Params,
) -> Result<Vec<(Vec<tracekeeper_model::Span>, Vec<usize>)>, QueryError> {
    let (start, end) = window(params, state.engine.now_ns())?;
    let filter = params.get("q").filter(|q| !q.trim().is_empty()).map(parse_traceql).transpose()?;
    // The union of the filter's posting lists holds every trace it can select.
    let terms = filter.as_ref().map(|q| q.hint().candidate_terms()).filter(|t| !t.is_empty());
    let terms = terms.unwrap_or_else(|| vec![IndexTerm::All]);
    let ids = state.engine.trace_ids_in(tenant, terms, start, end, LISTING_TRACES).await?;
    let traces = state.engine.traces_of(tenant, ids).await?;
    Ok(traces
        .into_iter()
        .filter_map(|spans| {
            let chosen = match (&filter, TraceView::new(&spans)) {
                (Some(q), Some(view)) => q.matches(&view),
                (Some(_), None) => return None,
                (None, _) => (0..spans.len()).collect(),
            };
            Some((spans, chosen))
        })
        .collect())
}

/// Attribute names of the selected spans, per scope in [`SCOPES`]' order.
async fn recent_keys(state: &QueryState, tenant: &str, params: &Params) -> Result<[BTreeSet<String>; 5], QueryError> {
    let mut keys: [BTreeSet<String>; 5] = Default::default();
    for (spans, chosen) in selected(state, tenant, params).await? {
        for span in chosen.into_iter().map(|i| &spans[i]) {
            let names =
                |attrs: &[tracekeeper_model::KeyValue]| attrs.iter().map(|kv| kv.key.clone()).collect::<Vec<_>>();
            keys[0].extend(names(&span.resource.attributes));
            keys[1].extend(names(&span.attributes));
            keys[2].extend(span.events.iter().flat_map(|e| names(&e.attributes)));
            keys[3].extend(span.links.iter().flat_map(|l| names(&l.attributes)));
            keys[4].extend(names(&span.scope.attributes));
        }
    }
    Ok(keys)
}

fn scope_param(params: &Params) -> Result<Option<&str>, QueryError> {
    match params.get("scope") {
        None | Some("all" | "none" | "") => Ok(None),
        Some(s) if s == "intrinsic" || SCOPES.contains(&s) => Ok(Some(s)),
        Some(other) => Err(QueryError::BadRequest(format!(
            "scope {other:?} is not supported: use resource, span, event, link, instrumentation, intrinsic or all"
        ))),
    }
}

async fn tags(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> TextResult {
    TextResult(
        async {
            let params = Params::parse(raw.as_deref());
            let scope = scope_param(&params)?;
            let mut names = BTreeSet::new();
            for (name, keys) in SCOPES.iter().zip(recent_keys(&state, &tenant, &params).await?) {
                if scope.is_none_or(|s| s == *name) {
                    names.extend(keys);
                }
            }
            if scope == Some("intrinsic") {
                names.extend(INTRINSICS.iter().map(|s| s.to_string()));
            }
            Ok(Json(json!({ "tagNames": names, "metrics": { "inspectedBytes": "0" } })).into_response())
        }
        .await,
    )
}

async fn tags_v2(State(state): State<Arc<QueryState>>, tenant: Tenant, RawQuery(raw): RawQuery) -> TextResult {
    TextResult(
        async {
            let params = Params::parse(raw.as_deref());
            let scope = scope_param(&params)?;
            let keys = recent_keys(&state, &tenant, &params).await?;
            let intrinsics: BTreeSet<String> = INTRINSICS.iter().map(|s| s.to_string()).collect();
            let scopes: Vec<Value> = SCOPES
                .iter()
                .copied()
                .zip(keys)
                .chain([("intrinsic", intrinsics)])
                .filter(|(name, tags)| scope.is_none_or(|s| s == *name) && !(scope.is_none() && tags.is_empty()))
                .map(|(name, tags)| json!({ "name": name, "tags": tags }))
                .collect();
            Ok(Json(json!({ "scopes": scopes, "metrics": { "inspectedBytes": "0" } })).into_response())
        }
        .await,
    )
}

/// A value as Tempo's v2 tag values list it: (type, text); nothing for nil and "".
fn typed(value: &FieldValue<'_>) -> Option<(&'static str, String)> {
    let kind = match value {
        FieldValue::Nil => return None,
        FieldValue::Str(s) if s.is_empty() => return None,
        FieldValue::Str(_) | FieldValue::Array(_) => "string",
        FieldValue::Int(_) => "int",
        FieldValue::Float(_) => "float",
        FieldValue::Bool(_) => "bool",
        FieldValue::Duration(_) => "duration",
        FieldValue::Status(_) | FieldValue::Kind(_) => "keyword",
    };
    Some((kind, value.text()))
}

/// Values of an attribute or intrinsic on the selected spans of recent traces, at most
/// [`MAX_VALUES`] of them.
async fn values_of(
    state: &QueryState,
    tenant: &str,
    params: &Params,
    field: &Expr,
) -> Result<BTreeSet<(&'static str, String)>, QueryError> {
    let mut out = BTreeSet::new();
    for (spans, chosen) in selected(state, tenant, params).await? {
        let Some(view) = TraceView::new(&spans) else { continue };
        for span in chosen {
            out.extend(traceql::value_on(&view, span, field).iter().filter_map(typed));
            if out.len() >= MAX_VALUES {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

async fn tag_values(
    State(state): State<Arc<QueryState>>,
    tenant: Tenant,
    Path(tag): Path<String>,
    RawQuery(raw): RawQuery,
) -> TextResult {
    TextResult(
        async {
            let params = Params::parse(raw.as_deref());
            let field = Expr::Attribute(traceql::Attribute { scope: traceql::Scope::Any, name: tag });
            let values = values_of(&state, &tenant, &params, &field).await?;
            let values: BTreeSet<String> = values.into_iter().map(|(_, v)| v).collect();
            Ok(Json(json!({ "tagValues": values })).into_response())
        }
        .await,
    )
}

async fn tag_values_v2(
    State(state): State<Arc<QueryState>>,
    tenant: Tenant,
    Path(tag): Path<String>,
    RawQuery(raw): RawQuery,
) -> TextResult {
    TextResult(
        async {
            let params = Params::parse(raw.as_deref());
            let field = traceql::parse_field(&tag).map_err(QueryError::BadRequest)?;
            let values = values_of(&state, &tenant, &params, &field).await?;
            let values: Vec<Value> = values.into_iter().map(|(t, v)| json!({ "type": t, "value": v })).collect();
            Ok(Json(json!({ "tagValues": values, "metrics": { "inspectedBytes": "0" } })).into_response())
        }
        .await,
    )
}
