-- Tables the appview indexes space.atbb.* records into.
-- Migrations run inside a transaction opened by the migrator: no BEGIN/COMMIT here.

-- One forum per deployment; rkey is always 'self' (see the space.atbb.forum lexicon),
-- so the unique key is what keeps a second forum from appearing.
create table forums (
  id          integer generated always as identity primary key,
  did         text,
  rkey        text not null default 'self' unique,
  name        text not null,
  description text not null default '',
  created_at  timestamptz not null default now(),
  indexed_at  timestamptz not null default now()
);

create table categories (
  id          integer generated always as identity primary key,
  forum_id    integer not null references forums (id) on delete cascade,
  rkey        text,
  slug        text not null,
  name        text not null,
  description text not null default '',
  sort_order  integer not null default 0 check (sort_order >= 0),
  created_at  timestamptz not null default now(),
  indexed_at  timestamptz not null default now(),
  unique (forum_id, slug)
);

-- A topic is a post without a root; replies point at their topic (root) and
-- at the post they answer (parent), mirroring the lexicon's replyRef.
create table posts (
  id          bigint generated always as identity primary key,
  uri         text not null unique,
  author_did  text not null,
  forum_id    integer not null references forums (id) on delete cascade,
  category_id integer references categories (id) on delete set null,
  root_id     bigint references posts (id) on delete cascade,
  parent_id   bigint references posts (id) on delete cascade,
  title       text,
  text        text not null,
  created_at  timestamptz not null,
  indexed_at  timestamptz not null default now()
);

create index posts_topics_by_category on posts (category_id, created_at desc) where root_id is null;
create index posts_replies_by_root on posts (root_id, created_at) where root_id is not null;
