// Read by drizzle-kit: `drizzle-kit generate` writes SQL migrations from the
// schema into drizzle/ (no database needed), `drizzle-kit migrate` applies
// them to the database at DATABASE_URL.
import { defineConfig } from 'drizzle-kit';

const url = process.env.DATABASE_URL?.trim() ?? '';
if (url === '' && process.argv.includes('migrate')) {
  console.error('drizzle.config.ts: DATABASE_URL is not set (postgres://user:password@host:5432/database)');
  process.exit(1);
}

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.ts',
  out: './drizzle',
  dbCredentials: { url },
});
