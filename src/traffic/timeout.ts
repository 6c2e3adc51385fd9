/**
 * `sent`, or `expired()`'s answer if it has not answered within `ms`. An answer that comes after
 * that is read by nobody: its body is cancelled. The request timeout and the per-try timeout
 * both use it; `expired` cancels the call and says which timeout it was.
 */
export function withTimeout(sent: Promise<Response>, ms: number, expired: () => Response): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    let late = false;
    const timer = setTimeout(() => {
      late = true;
      resolve(expired());
    }, ms);
    sent.then(
      (response) => {
        clearTimeout(timer);
        if (late) void response.body?.cancel().catch(() => {});
        else resolve(response);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
