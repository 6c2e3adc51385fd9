/**
 * How commands print: `-o json|yaml` for every read, tables for people, and the gateway's text
 * made safe for a terminal.
 */
import { stringify } from 'yaml';
import { UsageError, type OptionSpec } from './command.ts';

/**
 * Text from a gateway made safe for a terminal: control characters (ANSI escapes, carriage
 * returns) and bidirectional overrides are shown as escapes, never interpreted.
 */
export function printable(text: string): string {
  // Matching control characters is the point here.
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** One table cell: printable, and on one line. */
export function cell(text: string): string {
  return printable(text).replace(/\n/g, '\\n').replace(/\t/g, '\\t');
}

export const OUTPUT_OPTION = {
  output: {
    type: 'string',
    short: 'o',
    value: 'json|yaml',
    description: 'print the result as JSON or YAML instead of text (for scripts)',
  },
} as const satisfies Record<string, OptionSpec>;

export type OutputFormat = 'text' | 'json' | 'yaml';

export function outputFormat(values: { output?: string | undefined }): OutputFormat {
  const o = values.output;
  if (o === undefined) return 'text';
  if (o === 'json' || o === 'yaml') return o;
  throw new UsageError(`--output must be json or yaml, got "${o}"`);
}

/**
 * Prints `data` as JSON or YAML on stdout. In a pipe, exactly the document; on a terminal,
 * characters a terminal would act on are shown as escapes (as `printable`).
 */
export function emit(format: 'json' | 'yaml', data: unknown): void {
  const text = format === 'json' ? `${JSON.stringify(data, null, 2)}\n` : stringify(data, { lineWidth: 0 });
  process.stdout.write(process.stdout.isTTY ? printable(text) : text);
}

/** Aligned columns; the first row is the header. Cells must already be printable. */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
