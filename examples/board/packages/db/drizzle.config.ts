// Read by drizzle-kit: `drizzle-kit generate` writes SQL migrations from the
// schema into drizzle/, `drizzle-kit migrate` applies them to DATABASE_URL.
import { defineConfig } from 'drizzle-kit';

const url = process.env.DATABASE_URL;
if (!url) {
  // generate needs no database, so only say so; migrate then fails clearly.
  console.error('drizzle.config.ts: DATABASE_URL is not set');
}

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.ts',
  out: './drizzle',
  dbCredentials: { url: url ?? '' },
});
