/** `meshwork metrics -o json`: the Prometheus text format read back into samples. */
import { describe, expect, it } from 'vitest';
import { parsePrometheusText, PrometheusTextError } from '../../../src/node/cli/prometheus-text.ts';

describe('parsePrometheusText', () => {
  it('reads label values with escapes, commas and braces, and a summary family', () => {
    const text = [
      '# TYPE rpc summary',
      'rpc{quantile="0.5", path="/a,b}\\\\c\\n"} 1.5e-3',
      'rpc_count 4',
      'rpc_sum NaN',
      'free_metric -Inf',
    ].join('\n');
    expect(parsePrometheusText(text)).toEqual([
      { name: 'rpc', type: 'summary', labels: { quantile: '0.5', path: '/a,b}\\c\n' }, value: 0.0015 },
      { name: 'rpc_count', type: 'summary', labels: {}, value: 4 },
      { name: 'rpc_sum', type: 'summary', labels: {}, value: 'NaN' },
      { name: 'free_metric', type: 'untyped', labels: {}, value: '-Inf' },
    ]);
  });

  it('names the line of something that is not the text format', () => {
    for (const bad of ['ok 1\n{x="1"} 2', 'ok 1\nm{x=1} 2', 'ok 1\nm{x="1} 2', 'ok 1\nm one', 'ok 1\nm 1 2 3']) {
      expect(() => parsePrometheusText(bad), bad).toThrow(PrometheusTextError);
      expect(() => parsePrometheusText(bad), bad).toThrow(/^line 2: /);
    }
  });
});
