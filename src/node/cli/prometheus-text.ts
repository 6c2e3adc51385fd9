/**
 * Reads the Prometheus text exposition format (0.0.4) into samples, for `meshwork metrics -o json`.
 * Each sample carries its family's TYPE (a histogram's _bucket, _sum and _count samples are of
 * the histogram). Values that JSON cannot hold (+Inf, -Inf, NaN) stay strings.
 */

export interface Sample {
  name: string;
  /** counter, gauge, histogram, summary, or untyped. */
  type: string;
  labels: Record<string, string>;
  value: number | string;
  timestamp?: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;

export class PrometheusTextError extends Error {}

function value(token: string, line: number): number | string {
  if (/^[+-]?inf$/i.test(token)) return token.startsWith('-') ? '-Inf' : '+Inf';
  if (/^nan$/i.test(token)) return 'NaN';
  const n = Number(token);
  if (token === '' || Number.isNaN(n)) throw new PrometheusTextError(`line ${line}: "${token}" is not a sample value`);
  return n;
}

function family(name: string, types: Map<string, string>): string {
  if (types.has(name)) return types.get(name)!;
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  const t = base === undefined ? undefined : types.get(base);
  return t === 'histogram' || t === 'summary' ? t : 'untyped';
}

export function parsePrometheusText(text: string): Sample[] {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const l = raw.replace(/\r$/, '');
    if (l.trim() === '') return;
    if (l.startsWith('#')) {
      const type = /^#\s*TYPE\s+(\S+)\s+(\S+)/.exec(l);
      if (type) types.set(type[1]!, type[2]!);
      return;
    }
    let rest = l.trimStart();
    const name = NAME.exec(rest)?.[0];
    if (!name) throw new PrometheusTextError(`line ${line}: no metric name`);
    rest = rest.slice(name.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith('{')) {
      rest = rest.slice(1);
      for (;;) {
        rest = rest.trimStart();
        if (rest.startsWith('}')) {
          rest = rest.slice(1);
          break;
        }
        const label = LABEL.exec(rest)?.[0];
        if (!label) throw new PrometheusTextError(`line ${line}: bad label name`);
        rest = rest.slice(label.length).trimStart();
        if (!rest.startsWith('="') && !/^=\s*"/.test(rest))
          throw new PrometheusTextError(`line ${line}: label ${label} has no quoted value`);
        rest = rest.slice(rest.indexOf('"') + 1);
        let v = '';
        let closed = false;
        while (rest.length > 0) {
          const c = rest[0]!;
          if (c === '\\' && rest.length > 1) {
            const next = rest[1]!;
            v += next === 'n' ? '\n' : next;
            rest = rest.slice(2);
          } else if (c === '"') {
            rest = rest.slice(1);
            closed = true;
            break;
          } else {
            v += c;
            rest = rest.slice(1);
          }
        }
        if (!closed) throw new PrometheusTextError(`line ${line}: label ${label}'s value is not closed`);
        labels[label] = v;
        rest = rest.trimStart();
        if (rest.startsWith(',')) rest = rest.slice(1);
        else if (!rest.startsWith('}')) throw new PrometheusTextError(`line ${line}: expected , or } after a label`);
      }
    }
    const [v, ts, extra] = rest.trim().split(/\s+/);
    if (v === undefined || v === '' || extra !== undefined)
      throw new PrometheusTextError(`line ${line}: expected a value and at most a timestamp`);
    const sample: Sample = { name, type: family(name, types), labels, value: value(v, line) };
    if (ts !== undefined) {
      const t = Number(ts);
      if (!Number.isInteger(t)) throw new PrometheusTextError(`line ${line}: "${ts}" is not a timestamp`);
      sample.timestamp = t;
    }
    samples.push(sample);
  });
  return samples;
}
