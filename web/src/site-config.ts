/**
 * The page's site configuration: where the API is and how to sign in. Set once at start-up
 * (main.tsx) from the served config; read by the API client and by sign-in.
 */
export interface SiteConfig {
  /** Base URL of the query API; empty means this page's origin (local mode). */
  readonly apiUrl: string;
  /** OIDC sign-in (AWS); absent locally, where the API needs no token. */
  readonly auth?: {
    readonly issuer: string;
    readonly clientId: string;
    readonly scope?: string;
    readonly audience?: string;
  };
}

let config: SiteConfig = { apiUrl: '' };

export function setConfig(next: SiteConfig): void {
  config = next;
}

export function siteConfig(): SiteConfig {
  return config;
}
