// What the TraceQL editor needs to know of the text being typed, with no DOM and no
// network: where the cursor is (in a field name or a value), and how listed names and
// values are written in a query.

const OPERATOR = /(!=|=~|!~|>=|<=|=|>|<)/;

/**
 * What the text before `cursor` is in the middle of: a field name (`{ resource.se`) or
 * a value after a comparison (`{ name = "GE`). `from` is where the replaced text starts.
 */
export function contextAt(text, cursor) {
  const before = text.slice(0, cursor);
  const open = before.lastIndexOf('{');
  if (open < 0 || before.lastIndexOf('}') > open) return null;
  const value = /((?:span|resource|event|link|instrumentation)?\.[^\s=!<>~&|(){}"]+|[A-Za-z][\w:]*)\s*(!=|=~|!~|>=|<=|=|>|<)\s*("?)([^"&|{}()]*)$/.exec(before);
  if (value && !/\s$/.test(value[4]) && !(value[3] === '' && value[4].includes(' '))) {
    return { kind: 'value', field: value[1], quoted: value[3] === '"', partial: value[4], from: cursor - value[4].length - value[3].length };
  }
  const field = /(?:^|[\s{(&|!])((?:span|resource|event|link|instrumentation)?\.[^\s=!<>~&|(){}"]*|[A-Za-z][\w:]*)$/.exec(before);
  if (field && !OPERATOR.test(field[1])) return { kind: 'field', partial: field[1], from: cursor - field[1].length };
  return null;
}

/** Every field name the tags answer offers, as it is written in a query. */
export function fieldNames(tagsAnswer) {
  const out = [];
  for (const scope of tagsAnswer?.scopes || []) {
    for (const tag of scope.tags || []) out.push(scope.name === 'intrinsic' ? tag : `${scope.name}.${tag}`);
  }
  return [...new Set(out)].sort();
}

/** How a listed value is written in a query: strings quoted, the rest as they are. */
export function valueText(v) {
  return v.type === 'string' ? JSON.stringify(v.value) : String(v.value);
}

