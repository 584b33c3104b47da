// @ts-check
// The migrator reads SQL files next to its compiled code (dist/migrations/),
// so a production image needs dist/ only, never the package's source tree.
import { copyFile, mkdir, readdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const from = path.join(pkgDir, 'migrations');
const to = path.join(pkgDir, 'dist', 'migrations');

await rm(to, { recursive: true, force: true });
await mkdir(to, { recursive: true });
const files = (await readdir(from)).filter((f) => f.endsWith('.sql')).sort();
for (const f of files) await copyFile(path.join(from, f), path.join(to, f));
process.stdout.write(`db: copied ${files.length} migrations to dist/migrations\n`);
