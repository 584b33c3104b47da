import { readFileSync } from 'node:fs';

/**
 * The package version, read at start-up from package.json one level above
 * dist/. Reading it (rather than baking it in) keeps `pnpm version` the only
 * place a release changes it; package.json ships with the package anyway.
 */
export function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
