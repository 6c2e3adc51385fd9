/** Structured log lines (one JSON object each), as wrangler tail and Workers Logs read them. */

export type LogLevel = 'info' | 'warn' | 'error';

/** Callers pass only non-secret fields: never headers, tokens or keys. */
export function logEvent(level: LogLevel, msg: string, fields: Record<string, unknown>): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

/** An error's message for a log line, whatever was thrown. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
