-- Seed data so that a fresh deployment shows a working forum before any
-- record has been indexed. ON CONFLICT keeps a re-run harmless should this
-- file ever be applied by hand.

insert into forums (rkey, name, description)
values ('self', 'atBB Example Forum', 'A forum built on the AT Protocol, deployed with the atBB kit.')
on conflict (rkey) do nothing;

insert into categories (forum_id, slug, name, description, sort_order)
select f.id, c.slug, c.name, c.description, c.sort_order
from forums f
cross join (values
  ('announcements', 'Announcements', 'News about this forum and its software.', 0),
  ('general', 'General Discussion', 'Anything that does not fit elsewhere.', 1),
  ('help', 'Help & Support', 'Questions about running or using atBB.', 2)
) as c (slug, name, description, sort_order)
where f.rkey = 'self'
on conflict (forum_id, slug) do nothing;
