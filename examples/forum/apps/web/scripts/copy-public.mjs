// @ts-check
// The server serves /static/ from dist/public so that dist/ alone is a
// complete deployable: the image never needs the package's source tree.
import { cp, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const from = fileURLToPath(new URL('../public/', import.meta.url));
const to = fileURLToPath(new URL('../dist/public/', import.meta.url));

await rm(to, { recursive: true, force: true });
await cp(from, to, { recursive: true });
process.stdout.write('web: copied public/ to dist/public\n');
