declare namespace Cloudflare {
  interface Env {
    UPSTREAM_URL: string;
    ECHO: Fetcher;
    ECHO_V2: Fetcher;
    BROKEN: Fetcher;
  }
}
