//! What a search asks of a span, and how a stored span is checked against it.
//!
//! The storage indexes only narrow the candidates; every candidate is verified here,
//! so search results are exact whatever the index returned.

use tracekeeper_model::jaeger::value_to_text;
use tracekeeper_model::{AnyValue, KeyValue, Span, SpanKind, StatusCode};
use tracekeeper_storage::schema::{EVENT_NAME_KEY, MAX_INDEXED_LEN};
use tracekeeper_storage::{IndexTerm, IndexValue};

/// Conditions that must all hold on one span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanPredicate {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub kind: Option<SpanKind>,
    pub status: Option<StatusCode>,
    /// `key = value` anywhere the span holds tags ([`tags_of`]), compared by type.
    pub tags: Vec<(String, String)>,
    pub min_duration_ns: Option<u64>,
    pub max_duration_ns: Option<u64>,
    /// Zipkin's bare `annotationQuery` words: each must name a tag the span has
    /// ([`tags_of`]) or an event (annotation) it carries.
    pub words: Vec<String>,
}

/// Tags that Jaeger shows on every OTLP span but that are not stored as attributes:
/// they are derived from the span's own fields, and searchable the same way.
fn derived_tag(span: &Span, key: &str) -> Option<Option<AnyValue>> {
    Some(match key {
        "error" => span.is_error().then_some(AnyValue::Bool(true)),
        "span.kind" => (span.kind != SpanKind::Unspecified).then(|| AnyValue::String(span.kind.jaeger_name().into())),
        "otel.status_code" => match span.status.code {
            StatusCode::Unset => None,
            StatusCode::Ok => Some(AnyValue::String("OK".into())),
            StatusCode::Error => Some(AnyValue::String("ERROR".into())),
        },
        "otel.status_description" => {
            Some(AnyValue::String(span.status.message.clone())).filter(|_| !span.status.message.is_empty())
        }
        "otel.scope.name" => Some(AnyValue::String(span.scope.name.clone())),
        "otel.scope.version" => Some(AnyValue::String(span.scope.version.clone())),
        _ => return None,
    })
}

/// Does a stored value equal the query text, read as the stored value's type? An array
/// matches by its text or by any of its elements.
pub fn value_matches(stored: &AnyValue, wanted: &str) -> bool {
    match stored {
        AnyValue::Array(items) => {
            value_to_text(stored) == wanted || items.iter().any(|item| value_matches(item, wanted))
        }
        AnyValue::String(s) => s == wanted,
        AnyValue::Bool(b) => wanted.parse::<bool>().is_ok_and(|w| w == *b),
        AnyValue::Int(i) => wanted.parse::<i64>().is_ok_and(|w| w == *i),
        AnyValue::Double(d) => wanted.parse::<f64>().is_ok_and(|w| w == *d),
        other => value_to_text(other) == wanted,
    }
}

/// Every tag a span holds, wherever Jaeger's search finds one: the span's attributes,
/// its resource's (Jaeger's process tags), its instrumentation scope's, and each
/// event's (Jaeger's log fields). The storage indexes the same (`schema::terms_of`).
pub fn tags_of(span: &Span) -> impl Iterator<Item = &KeyValue> {
    span.attributes
        .iter()
        .chain(span.resource.attributes.iter())
        .chain(span.scope.attributes.iter())
        .chain(span.events.iter().flat_map(|e| e.attributes.iter()))
}

fn tag_matches(span: &Span, key: &str, wanted: &str) -> bool {
    if let Some(derived) = derived_tag(span, key) {
        return derived.is_some_and(|v| value_matches(&v, wanted));
    }
    // An event's name is its log's `event` field in Jaeger.
    (key == EVENT_NAME_KEY && span.events.iter().any(|e| e.name == wanted))
        || tags_of(span).any(|kv| kv.key == key && value_matches(&kv.value, wanted))
}

impl SpanPredicate {
    pub fn matches(&self, span: &Span) -> bool {
        let duration = span.duration_ns();
        self.service.as_deref().is_none_or(|s| span.service_name() == s)
            && self.operation.as_deref().is_none_or(|o| span.name == o)
            && self.kind.is_none_or(|k| span.kind == k)
            && self.status.is_none_or(|c| span.status.code == c)
            && self.min_duration_ns.is_none_or(|min| duration >= min)
            && self.max_duration_ns.is_none_or(|max| duration <= max)
            && self.tags.iter().all(|(k, v)| tag_matches(span, k, v))
            && self.words.iter().all(|w| {
                span.events.iter().any(|e| e.name == *w)
                    || tags_of(span).any(|kv| kv.key == *w)
                    || derived_tag(span, w).is_some_and(|v| v.is_some())
            })
    }

    /// The posting lists whose union holds every trace this predicate can match: the
    /// narrowest available, by a fixed preference (tag, operation, service, all).
    pub fn candidate_terms(&self) -> Vec<IndexTerm> {
        if let Some((key, value)) =
            self.tags.iter().find(|(k, _)| k.len() <= MAX_INDEXED_LEN && derived_tag_key(k).is_none())
        {
            let mut values = Vec::new();
            if value.len() <= MAX_INDEXED_LEN {
                values.push(IndexValue::Str(value.clone()));
            }
            if let Ok(b) = value.parse::<bool>() {
                values.push(IndexValue::Bool(b));
            }
            if let Ok(i) = value.parse::<i64>() {
                values.push(IndexValue::Int(i));
            }
            if let Ok(d) = value.parse::<f64>() {
                if d.is_finite() {
                    values.push(IndexValue::double(d));
                }
            }
            // A long string that parses as nothing else is not indexed: fall through.
            if !values.is_empty() {
                let mut terms: Vec<IndexTerm> =
                    values.into_iter().map(|value| IndexTerm::Attribute { key: key.clone(), value }).collect();
                // A resource's `service.name` is indexed as the service, not as a tag.
                if key == "service.name" {
                    terms.push(IndexTerm::Service(value.clone()));
                }
                return terms;
            }
        }
        match (&self.service, &self.operation) {
            (Some(service), Some(name)) => vec![IndexTerm::Operation { service: service.clone(), name: name.clone() }],
            (Some(service), None) => vec![IndexTerm::Service(service.clone())],
            _ => vec![IndexTerm::All],
        }
    }
}

fn derived_tag_key(key: &str) -> Option<()> {
    matches!(
        key,
        "error"
            | "span.kind"
            | "otel.status_code"
            | "otel.status_description"
            | "otel.scope.name"
            | "otel.scope.version"
    )
    .then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_matching() {
        assert!(value_matches(&AnyValue::Int(200), "200"));
        assert!(!value_matches(&AnyValue::Int(200), "200x"));
        assert!(value_matches(&AnyValue::Double(1.5), "1.5"));
        assert!(value_matches(&AnyValue::Bool(true), "true"));
        assert!(value_matches(&AnyValue::String("a b".into()), "a b"));
    }

    #[test]
    fn candidate_terms_cover_every_type_the_text_can_mean() {
        let p = SpanPredicate { tags: vec![("code".into(), "1".into())], ..Default::default() };
        let terms = p.candidate_terms();
        assert_eq!(terms.len(), 3, "{terms:?}");
        let p = SpanPredicate {
            tags: vec![("error".into(), "true".into())],
            service: Some("a".into()),
            ..Default::default()
        };
        assert_eq!(p.candidate_terms(), vec![IndexTerm::Service("a".into())]);
    }
}
