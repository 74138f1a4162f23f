//! `compare({selection}, topN, start, end)`, which Grafana's Traces Drilldown uses to
//! show what sets some spans apart: the spans the pipeline selects are split into the
//! selection (those the spanset matches, started within `start`..`end` when given) and
//! the baseline (the rest). Each attribute value is counted per interval in each group
//! (`__meta_type` `selection` or `baseline`, the attribute as a label), keeping the
//! `topN` values of each attribute per group, and each attribute's spans in total
//! (`selection_total`, `baseline_total`).

use std::collections::{BTreeMap, HashSet};

use super::compute::{scan, Context, Inspected};
use super::series::{Accumulator, Label, Labels, SeriesSet};
use crate::error::QueryError;
use crate::traceql::metrics::{Function, Leaf};
use crate::traceql::{self, At, Intrinsic, Pipeline, Query, Stage, TraceView};

fn attributes(view: &TraceView<'_>, index: usize) -> Vec<(String, Label)> {
    let span = &view.spans()[index];
    let at = At { trace: view, span: index, event: None, link: None };
    let mut out: Vec<(String, Label)> = [Intrinsic::Name, Intrinsic::Status, Intrinsic::Kind]
        .into_iter()
        .map(|i| (traceql::field_name(&traceql::Expr::Intrinsic(i)), Label::of(&at.intrinsic(i))))
        .collect();
    let plain = |kv: &tracekeeper_model::KeyValue| {
        !matches!(kv.value, tracekeeper_model::AnyValue::Array(_) | tracekeeper_model::AnyValue::KvList(_))
    };
    for (scope, attrs) in [("span", &span.attributes), ("resource", &span.resource.attributes)] {
        for kv in attrs.iter().filter(|kv| plain(kv)) {
            let attr = traceql::Attribute {
                scope: if scope == "span" { traceql::Scope::Span } else { traceql::Scope::Resource },
                name: kv.key.clone(),
            };
            out.push((format!("{scope}.{}", kv.key), Label::of(&at.attribute(&attr))));
        }
    }
    out
}

pub async fn compare(ctx: &Context<'_>, leaf: &Leaf) -> Result<(SeriesSet, Inspected), QueryError> {
    let Function::Compare { selection, top, start_ns, end_ns } = &leaf.function else {
        return Ok((SeriesSet::new(), Inspected::default()));
    };
    let chooser =
        Query { pipeline: Pipeline { stages: vec![Stage::Spansets(selection.clone())] }, hints: Default::default() };
    let window = |t: u64| (*start_ns == 0 || t as i64 >= *start_ns) && (*end_ns == 0 || t as i64 <= *end_ns);
    let intervals = ctx.range.intervals();
    let mut acc = Accumulator::default();
    // The selection of the trace last seen, by its first span's address.
    let mut chosen: (usize, HashSet<usize>) = (usize::MAX, HashSet::new());
    let inspected = scan(ctx, &leaf.pipeline, |view, index, interval| {
        let key = view.spans().as_ptr() as usize;
        if chosen.0 != key {
            chosen = (key, chooser.matches(view).into_iter().collect());
        }
        let span = &view.spans()[index];
        let group = if chosen.1.contains(&index) && window(span.start_ns) { "selection" } else { "baseline" };
        for (key, value) in attributes(view, index) {
            let meta = ("__meta_type".to_string(), Label::Str(group.into()));
            acc.cell(vec![meta.clone(), (key.clone(), value)], intervals, interval).count += 1;
            let total = ("__meta_type".to_string(), Label::Str(format!("{group}_total")));
            acc.cell(vec![total, (key, Label::Nil)], intervals, interval).count += 1;
        }
    })
    .await?;
    // The top values of each attribute in each group, by their count over the range.
    let mut ranked: BTreeMap<(Label, String), Vec<(u64, Labels)>> = BTreeMap::new();
    for (labels, (cells, _)) in &acc.cells {
        if let [(_, group @ Label::Str(g)), (key, _)] = labels.as_slice() {
            if !g.ends_with("_total") {
                let count = cells.iter().map(|c| c.count).sum();
                ranked.entry((group.clone(), key.clone())).or_default().push((count, labels.clone()));
            }
        }
    }
    let mut dropped = Vec::new();
    for values in ranked.values_mut() {
        values.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        dropped.extend(values.drain(values.len().min(*top)..).map(|(_, labels)| labels));
    }
    for labels in dropped {
        acc.cells.remove(&labels);
    }
    let series = super::series::finish(&leaf.function, acc, &ctx.range, false, &|_, _| None);
    Ok((series, inspected))
}
