// Categories are plain JSON files in apps/api/data/, one per category, read
// on every request: editing one needs no rebuild. The folder sits next to
// dist/, found from this module's own location, not the working directory.
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const defaultDataDir = fileURLToPath(new URL('../data/', import.meta.url));

export interface Category {
  slug: string;
  name: string;
  description: string;
  order: number;
}

function isCategory(value: unknown): value is Category {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.slug === 'string' && typeof v.name === 'string' && typeof v.description === 'string' && typeof v.order === 'number';
}

export async function readCategories(dir: string = defaultDataDir): Promise<Category[]> {
  const names = (await readdir(dir)).filter((name) => name.endsWith('.json')).sort();
  const categories: Category[] = [];
  for (const name of names) {
    const parsed: unknown = JSON.parse(await readFile(`${dir.replace(/\/?$/, '/')}${name}`, 'utf8'));
    if (!isCategory(parsed)) throw new Error(`data file ${name} is not a category (slug, name, description, order)`);
    categories.push(parsed);
  }
  return categories.sort((a, b) => a.order - b.order || a.slug.localeCompare(b.slug));
}
