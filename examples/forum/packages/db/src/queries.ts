import type { Sql } from './connect.js';

export interface Forum {
  id: number;
  did: string | null;
  name: string;
  description: string;
  createdAt: string;
}

export interface Category {
  id: number;
  slug: string;
  name: string;
  description: string;
  sortOrder: number;
}

export async function getForum(sql: Sql): Promise<Forum | undefined> {
  const [row] = await sql<Forum[]>`
    select id, did, name, description, to_json(created_at)#>>'{}' as "createdAt"
    from forums
    where rkey = 'self'`;
  return row;
}

export async function listCategories(sql: Sql, forumId: number): Promise<Category[]> {
  const rows = await sql<Category[]>`
    select id, slug, name, description, sort_order as "sortOrder"
    from categories
    where forum_id = ${forumId}
    order by sort_order, name`;
  return [...rows];
}
