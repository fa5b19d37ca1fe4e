/** The operator token from a URL fragment (`#token=...`, also `#a=b&token=...`); null when there is none. */
export function tokenFromHash(hash: string): string | null {
  return /(?:^#|&)token=([A-Za-z0-9_-]+)/.exec(hash)?.[1] ?? null;
}
