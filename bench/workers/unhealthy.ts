// A broken endpoint for the resilience scenarios: MODE=503 answers 503 to everything, MODE=hang
// never answers (within a minute).
export default {
  async fetch(_request: Request, env: { MODE: string }): Promise<Response> {
    if (env.MODE === 'hang') await new Promise((r) => setTimeout(r, 60_000));
    return new Response('unavailable', { status: 503 });
  },
};
