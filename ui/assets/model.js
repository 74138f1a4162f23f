// One trace in memory, from Jaeger JSON (what /api/traces/{id} answers) or OTLP JSON
// (/api/v3 and the OpenTelemetry file exporter). Large traces are the point: the
// per-span fields every view reads are flat arrays, the tree is a CSR adjacency list,
// and nothing here recurses, so a 100,000-span trace or a 10,000-deep chain is fine.
// Details (attributes, events, links) are read from the raw span only when opened.

const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

/** Picks the trace out of whatever JSON a person might hand us, or throws saying why. */
export function parseTraceFile(json) {
  if (json && Array.isArray(json.resourceSpans)) return fromOtlp(json);
  if (json?.result?.resourceSpans) return fromOtlp(json.result);
  if (json?.batches) return fromOtlp({ resourceSpans: json.batches });
  if (json?.trace?.resourceSpans) return fromOtlp(json.trace);
  if (Array.isArray(json?.data)) {
    if (json.data.length === 0) throw new Error('the file holds no trace (its "data" list is empty)');
    return fromJaeger(json.data[0]);
  }
  if (Array.isArray(json?.spans) && json.processes) return fromJaeger(json);
  throw new Error('not a trace file: expected Jaeger JSON ({"data":[{"spans":…}]}) or OTLP JSON ({"resourceSpans":…})');
}

function jaegerTag(tags, key) {
  if (!tags) return undefined;
  for (const t of tags) if (t.key === key) return t.value;
  return undefined;
}

export function fromJaeger(trace) {
  if (!trace || !Array.isArray(trace.spans)) throw new Error('Jaeger trace has no "spans" list');
  const processes = trace.processes || {};
  const n = trace.spans.length;
  const spans = new Array(n);
  for (let i = 0; i < n; i++) {
    const s = trace.spans[i];
    const process = processes[s.processID] || s.process || { serviceName: 'unknown', tags: [] };
    let parentId = s.parentSpanID || '';
    const links = [];
    for (const r of s.references || []) {
      if (!parentId && r.refType === 'CHILD_OF' && r.traceID === s.traceID) parentId = r.spanID;
      else if (r.spanID !== parentId || r.traceID !== s.traceID) links.push({ traceId: r.traceID, spanId: r.spanID, kind: r.refType, attributes: [] });
    }
    const status = jaegerTag(s.tags, 'otel.status_code');
    spans[i] = {
      spanId: s.spanID,
      parentId,
      service: process.serviceName || 'unknown',
      name: s.operationName || '',
      start: Number(s.startTime) || 0,
      duration: Number(s.duration) || 0,
      kind: jaegerTag(s.tags, 'span.kind') || '',
      error: jaegerTag(s.tags, 'error') === true || jaegerTag(s.tags, 'error') === 'true' || status === 'ERROR',
      format: 'jaeger',
      raw: s,
      process,
      links,
    };
  }
  return finish(trace.traceID || trace.spans[0]?.traceID || '', spans, trace.warnings || []);
}

function nanosToMicros(v) {
  // Nanosecond strings exceed 2^53; split to keep the microseconds exact.
  const s = String(v ?? '0');
  if (s.length <= 15) return Number(s) / 1000;
  return Number(s.slice(0, -3)) + Number(s.slice(-3)) / 1000;
}

function otlpKind(kind) {
  if (typeof kind === 'number') return KINDS[kind] || '';
  const k = String(kind || '').replace('SPAN_KIND_', '').toLowerCase();
  return k === 'unspecified' ? '' : k;
}

function isErrorStatus(status) {
  const code = status?.code;
  return code === 2 || code === 'STATUS_CODE_ERROR' || code === 'ERROR';
}

export function fromOtlp(data) {
  const spans = [];
  let traceId = '';
  for (const rs of data.resourceSpans || []) {
    const resource = rs.resource || { attributes: [] };
    const service = anyText(attr(resource.attributes, 'service.name')) || 'unknown';
    for (const ss of rs.scopeSpans || rs.instrumentationLibrarySpans || []) {
      const scope = ss.scope || ss.instrumentationLibrary || {};
      for (const s of ss.spans || []) {
        traceId = traceId || normalizeId(s.traceId);
        const start = nanosToMicros(s.startTimeUnixNano);
        const end = nanosToMicros(s.endTimeUnixNano);
        spans.push({
          spanId: normalizeId(s.spanId),
          parentId: normalizeId(s.parentSpanId),
          service,
          name: s.name || '',
          start,
          duration: Math.max(0, end - start),
          kind: otlpKind(s.kind),
          error: isErrorStatus(s.status),
          format: 'otlp',
          raw: s,
          resource,
          scope,
          links: (s.links || []).map((l) => ({ traceId: normalizeId(l.traceId), spanId: normalizeId(l.spanId), kind: 'LINK', attributes: l.attributes || [] })),
        });
      }
    }
  }
  if (spans.length === 0) throw new Error('the OTLP data holds no spans');
  return finish(traceId, spans, []);
}

/** OTLP JSON ids are hex; some exporters write base64 (proto3's bytes mapping). */
export function normalizeId(id) {
  if (!id) return '';
  if (/^[0-9a-fA-F]+$/.test(id) && (id.length === 16 || id.length === 32)) return id.toLowerCase();
  try {
    const bin = atob(id);
    return Array.from(bin, (c) => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
  } catch {
    return String(id).toLowerCase();
  }
}

function attr(list, key) {
  for (const kv of list || []) if (kv.key === key) return kv.value;
  return undefined;
}

/** An OTLP AnyValue as text, depth-capped so a hostile file cannot blow the stack. */
export function anyText(v, depth = 0) {
  if (v === undefined || v === null) return '';
  if (depth > 16) return '…';
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return String(v.intValue);
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('boolValue' in v) return String(v.boolValue);
  if ('bytesValue' in v) return `base64:${v.bytesValue}`;
  if (v.arrayValue) return `[${(v.arrayValue.values || []).map((x) => anyText(x, depth + 1)).join(', ')}]`;
  if (v.kvlistValue) return `{${(v.kvlistValue.values || []).map((kv) => `${kv.key}: ${anyText(kv.value, depth + 1)}`).join(', ')}}`;
  return '';
}

export function anyType(v) {
  if (!v) return 'empty';
  for (const [field, type] of [['stringValue', 'string'], ['intValue', 'int'], ['doubleValue', 'double'], ['boolValue', 'bool'], ['bytesValue', 'bytes'], ['arrayValue', 'array'], ['kvlistValue', 'map']]) {
    if (field in v) return type;
  }
  return 'empty';
}

/** Links spans into a tree and lays out the flat arrays the views read. */
function finish(traceId, spans, warnings) {
  const n = spans.length;
  const byId = new Map();
  for (let i = 0; i < n; i++) if (!byId.has(spans[i].spanId)) byId.set(spans[i].spanId, i);
  const parent = new Int32Array(n).fill(-1);
  const start = new Float64Array(n);
  const end = new Float64Array(n);
  const counts = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) {
    const p = spans[i].parentId ? byId.get(spans[i].parentId) : undefined;
    if (p !== undefined && p !== i) parent[i] = p;
    start[i] = spans[i].start;
    end[i] = spans[i].start + spans[i].duration;
  }
  // A parent cycle (hostile or corrupt data) would hide its spans from every walk
  // that starts at a root: the span of each cycle seen first becomes a root.
  breakCycles(parent);
  for (let i = 0; i < n; i++) if (parent[i] >= 0) counts[parent[i] + 1]++;
  const childStart = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) childStart[i + 1] = childStart[i] + counts[i + 1];
  const fill = childStart.slice(0, n);
  const childList = new Int32Array(Math.max(0, childStart[n]));
  for (let i = 0; i < n; i++) if (parent[i] >= 0) childList[fill[parent[i]]++] = i;
  const byStart = (a, b) => start[a] - start[b] || a - b;
  for (let p = 0; p < n; p++) {
    const a = childStart[p], b = childStart[p + 1];
    if (b - a > 1) childList.set(Array.from(childList.subarray(a, b)).sort(byStart), a);
  }
  const roots = [];
  for (let i = 0; i < n; i++) if (parent[i] < 0) roots.push(i);
  roots.sort(byStart);

  // Pre-order (the timeline's order) and depth, with an explicit stack.
  const order = new Int32Array(n);
  const depth = new Int32Array(n);
  let k = 0;
  const stack = roots.slice().reverse();
  while (stack.length) {
    const i = stack.pop();
    order[k++] = i;
    for (let c = childStart[i + 1] - 1; c >= childStart[i]; c--) {
      const child = childList[c];
      depth[child] = depth[i] + 1;
      stack.push(child);
    }
  }

  const serviceNames = [...new Set(spans.map((s) => s.service))].sort();
  const serviceIndex = new Map(serviceNames.map((s, i) => [s, i]));
  const service = new Int32Array(n);
  let errors = 0, maxDepth = 0, minStart = Infinity, maxEnd = -Infinity;
  for (let i = 0; i < n; i++) {
    service[i] = serviceIndex.get(spans[i].service);
    if (spans[i].error) errors++;
    if (depth[i] > maxDepth) maxDepth = depth[i];
    if (start[i] < minStart) minStart = start[i];
    if (end[i] > maxEnd) maxEnd = end[i];
  }
  const root = roots.find((r) => !spans[r].parentId) ?? roots[0];
  return {
    traceId, spans, warnings, parent, start, end, childStart, childList, roots, order, depth,
    services: serviceNames, service, errors, maxDepth: n ? maxDepth + 1 : 0,
    startTime: n ? minStart : 0, endTime: n ? maxEnd : 0, duration: n ? maxEnd - minStart : 0,
    rootService: root !== undefined ? spans[root].service : '', rootName: root !== undefined ? spans[root].name : '',
  };
}

function breakCycles(parent) {
  const n = parent.length;
  const state = new Uint8Array(n); // 0 unseen, 1 on the current walk, 2 done
  const walk = [];
  for (let i = 0; i < n; i++) {
    let j = i;
    while (j >= 0 && state[j] === 0) {
      state[j] = 1;
      walk.push(j);
      j = parent[j];
    }
    if (j >= 0 && state[j] === 1) parent[j] = -1;
    for (const w of walk) state[w] = 2;
    walk.length = 0;
  }
}

export function childrenOf(trace, i) {
  return trace.childList.subarray(trace.childStart[i], trace.childStart[i + 1]);
}

/** The typed details of span i, for the detail panel. */
export function spanDetail(trace, i) {
  const s = trace.spans[i];
  if (s.format === 'otlp') {
    const raw = s.raw;
    const typed = (list) => (list || []).map((kv) => ({ key: kv.key, type: anyType(kv.value), value: anyText(kv.value) }));
    return {
      attributes: typed(raw.attributes),
      resource: typed(s.resource.attributes),
      scope: { name: s.scope.name || '', version: s.scope.version || '' },
      events: (raw.events || []).map((e) => ({ offset: nanosToMicros(e.timeUnixNano) - s.start, name: e.name || '', attributes: typed(e.attributes) })),
      links: s.links.map((l) => ({ ...l, attributes: typed(l.attributes) })),
      status: { code: isErrorStatus(raw.status) ? 'ERROR' : raw.status?.code ? 'OK' : 'UNSET', message: raw.status?.message || '' },
      startNs: String(raw.startTimeUnixNano || ''),
    };
  }
  const raw = s.raw;
  const hidden = new Set(['otel.scope.name', 'otel.scope.version', 'otel.status_code', 'otel.status_description']);
  const typed = (list) => (list || []).filter((t) => !hidden.has(t.key)).map((t) => ({ key: t.key, type: t.type || typeof t.value, value: String(t.value) }));
  return {
    attributes: typed(raw.tags),
    resource: typed(s.process.tags),
    scope: { name: String(jaegerTag(raw.tags, 'otel.scope.name') ?? ''), version: String(jaegerTag(raw.tags, 'otel.scope.version') ?? '') },
    events: (raw.logs || []).map((l) => {
      const fields = l.fields || [];
      const name = fields.find((f) => f.key === 'event')?.value ?? '';
      return { offset: Number(l.timestamp) - s.start, name: String(name), attributes: typed(fields.filter((f) => f.key !== 'event')) };
    }),
    links: s.links.map((l) => ({ ...l, attributes: [] })),
    status: { code: String(jaegerTag(raw.tags, 'otel.status_code') ?? (s.error ? 'ERROR' : 'UNSET')), message: String(jaegerTag(raw.tags, 'otel.status_description') ?? '') },
    startNs: '',
  };
}
